/// Models and autoencoders from checkpoint files on disk: Hugging Face GPT-2, TransformerLens
/// state dicts and SAELens directories, all safetensors. Dimensions are inferred from the
/// weights and cross-checked; each tensor used is read into memory of the library's own, in
/// the file's dtype (see `CheckpointFile.swift`: a loaded model never reads the file again).

/// The checkpoint layouts nodewrite reads.
package enum CheckpointFormat: Sendable, Equatable {
    /// Hugging Face GPT-2 (`h.{L}.attn.c_proj.weight`, ...), names after `prefix`
    /// ("" or "transformer.").
    case huggingFaceGPT2(prefix: String)
    /// A TransformerLens `HookedTransformer` state dict (`blocks.{L}.attn.W_O`, ...).
    case transformerLens
}

extension Model {
    /// A model from the safetensors checkpoint at `path`. For Hugging Face GPT-2, n_heads
    /// comes from the file's `__metadata__` ("n_head") or from a `config.json` in the same
    /// directory.
    package static func load(safetensorsAt path: String) throws(NodeWriteError) -> Model {
        let file = try SafetensorsFile(path: path)
        return try load(file, configDirectory: directory(of: path))
    }

    /// A model from a parsed checkpoint; `configDirectory` is where a `config.json` may be
    /// (nil: none is read).
    /// - Throws: as the layouts' loaders, and `.staleInput` when the file changed while it was read.
    package static func load(_ file: SafetensorsFile, configDirectory: String?) throws(NodeWriteError) -> Model {
        let model = switch try CheckpointFormat.detect(file) {
        case .transformerLens:
            try loadTransformerLens(file)
        case .huggingFaceGPT2(let prefix):
            try loadGPT2(file, prefix: prefix, configDirectory: configDirectory)
        }
        try file.ensureUnchanged()
        return model
    }

    private static func loadTransformerLens(_ file: SafetensorsFile) throws(NodeWriteError) -> Model {
        let nLayers = try layerCount(file, prefix: "blocks.", required: "attn.W_O")
        let wo0 = try file.require("blocks.0.attn.W_O"), wout0 = try file.require("blocks.0.mlp.W_out")
        guard wo0.shape.count == 3 else {
            throw .shapeMismatch("\(file.label): blocks.0.attn.W_O has shape \(wo0.shape), not (n_heads, d_head, d_model)")
        }
        let (nHeads, dHead, dModel) = (wo0.shape[0], wo0.shape[1], wo0.shape[2])
        guard wout0.shape.count == 2 else {
            throw .shapeMismatch("\(file.label): blocks.0.mlp.W_out has shape \(wout0.shape), not (d_ff, d_model)")
        }
        let dims = try file.labelled { () throws(NodeWriteError) in try ModelDims(nLayers: nLayers, dModel: dModel, nHeads: nHeads, dHead: dHead, dFF: wout0.shape[0]) }
        let model = Model(dims: dims)
        for layer in 0..<nLayers {
            try model.put(file, "blocks.\(layer).attn.W_O", .attnToResidual, layer: layer,
                          want: [nHeads, dHead, dModel], "(n_heads, d_head, d_model)")
            try model.put(file, "blocks.\(layer).mlp.W_out", .mlpToResidual, layer: layer,
                          want: [dims.dFF, dModel], "(d_ff, d_model)")
            try model.putTransformerLensReadSide(file, layer: layer)
        }
        if let wu = file["unembed.W_U"] {
            guard wu.shape.count == 2, wu.shape[0] == dModel else {
                throw .shapeMismatch("\(file.label): unembed.W_U has shape \(wu.shape), not (d_model = \(dModel), n_vocab)")
            }
            try model.put(file, wu, .unembedding, view: file.view(wu))
        }
        if file["ln_final.w"] != nil {
            try model.put(file, "ln_final.w", .layerNormGainFinal, layer: noLayer, want: [dModel], "(d_model,)")
        }
        return model
    }

    private static func loadGPT2(_ file: SafetensorsFile, prefix p: String,
                                 configDirectory: String?) throws(NodeWriteError) -> Model {
        let nLayers = try layerCount(file, prefix: p + "h.", required: "attn.c_proj.weight")
        let attn0 = try file.require(p + "h.0.attn.c_proj.weight"), mlp0 = try file.require(p + "h.0.mlp.c_proj.weight")
        guard attn0.shape.count == 2 else {
            throw .shapeMismatch("\(file.label): \(attn0.name) has shape \(attn0.shape), not Conv1D (n_heads·d_head, d_model)")
        }
        guard mlp0.shape.count == 2 else {
            throw .shapeMismatch("\(file.label): \(mlp0.name) has shape \(mlp0.shape), not Conv1D (d_ff, d_model)")
        }
        let (inner, dModel, dFF) = (attn0.shape[0], attn0.shape[1], mlp0.shape[0])
        let config = try gpt2Config(file, configDirectory: configDirectory)
        let nHeads = config.nHeads
        guard inner % nHeads == 0 else {
            throw .shapeMismatch("\(file.label): \(attn0.name) has \(inner) inputs, not a multiple of n_head = \(nHeads)")
        }
        for (key, value, actual) in [("n_layer", config.nLayers, nLayers), ("n_embd", config.dModel, dModel),
                                     ("n_inner", config.dFF, dFF)] {
            if let value, value != actual {
                throw .shapeMismatch("\(config.source): \(key) = \(value), but the weights have \(actual)")
            }
        }
        let dHead = inner / nHeads
        let dims = try file.labelled { () throws(NodeWriteError) in try ModelDims(nLayers: nLayers, dModel: dModel, nHeads: nHeads, dHead: dHead, dFF: dFF) }
        let model = Model(dims: dims)
        for layer in 0..<nLayers {
            // Conv1D (in, out) = (n_heads·d_head, d_model), row-major: (h, e, m) is at
            // (h·d_head + e)·d_model + m, so it is the (n_heads, d_head, d_model) view as it lies.
            let a = try file.require(p + "h.\(layer).attn.c_proj.weight")
            guard a.shape == [inner, dModel] else {
                throw .shapeMismatch("\(file.label): \(a.name) has shape \(a.shape), layer 0's is \([inner, dModel])")
            }
            try model.put(file, a, .attnToResidual, layer: layer, view: file.view(a, shape: [nHeads, dHead, dModel]))
            try model.put(file, p + "h.\(layer).mlp.c_proj.weight", .mlpToResidual, layer: layer,
                          want: [dFF, dModel], "(d_ff, d_model)")
            if config.readSide { try model.putGPT2ReadSide(file, prefix: p, layer: layer) }
        }
        if let epsilon = config.layerNormEpsilon {
            do { try model.setLayerNormEpsilon(epsilon) } catch { throw error.prefixed("\(config.source): ") }
        }
        if let activation = config.activation { model.mlpActivation = activation }
        // The unembedding is tied to the token embedding (n_vocab, d_model): viewed transposed.
        if let wte = file[p + "wte.weight"] ?? file["lm_head.weight"] {
            guard wte.shape.count == 2, wte.shape[1] == dModel else {
                throw .shapeMismatch("\(file.label): \(wte.name) has shape \(wte.shape), not (n_vocab, d_model = \(dModel))")
            }
            let view = try file.view(wte, shape: [dModel, wte.shape[0]], strides: [1, dModel])
            try model.put(file, wte, .unembedding, view: view)
        }
        if file[p + "ln_f.weight"] != nil {
            try model.put(file, p + "ln_f.weight", .layerNormGainFinal, layer: noLayer, want: [dModel], "(d_model,)")
        }
        return model
    }

    /// The read side of a TransformerLens block (what the edge DSTs read), each tensor set when
    /// the file has it: ln1.w / ln1.b, ln2.w / ln2.b (absent after fold_ln or without LayerNorm:
    /// then unset), W_Q / W_K / W_V, b_Q / b_K / b_V, b_O, W_in, b_in, b_out.
    private func putTransformerLensReadSide(_ file: SafetensorsFile, layer l: Int) throws(NodeWriteError) {
        let d = dims, b = "blocks.\(l)."
        let hmd = [d.nHeads, d.dModel, d.dHead], hd = [d.nHeads, d.dHead]
        let tensors: [(String, WeightLocation, [Int], String)] = [
            ("ln1.w", .layerNormGainPreAttn, [d.dModel], "(d_model,)"),
            ("ln1.b", .layerNormBiasPreAttn, [d.dModel], "(d_model,)"),
            ("ln2.w", .layerNormGainPreMLP, [d.dModel], "(d_model,)"),
            ("ln2.b", .layerNormBiasPreMLP, [d.dModel], "(d_model,)"),
            ("attn.W_Q", .attnToQuery, hmd, "(n_heads, d_model, d_head)"),
            ("attn.W_K", .attnToKey, hmd, "(n_heads, d_model, d_head)"),
            ("attn.W_V", .attnToValue, hmd, "(n_heads, d_model, d_head)"),
            ("attn.b_Q", .attnQueryBias, hd, "(n_heads, d_head)"),
            ("attn.b_K", .attnKeyBias, hd, "(n_heads, d_head)"),
            ("attn.b_V", .attnValueBias, hd, "(n_heads, d_head)"),
            ("attn.b_O", .attnOutBias, [d.dModel], "(d_model,)"),
            ("mlp.W_in", .mlpToHidden, [d.dModel, d.dFF], "(d_model, d_ff)"),
            ("mlp.b_in", .mlpInBias, [d.dFF], "(d_ff,)"),
            ("mlp.b_out", .mlpOutBias, [d.dModel], "(d_model,)"),
        ]
        for (name, weight, want, described) in tensors where file[b + name] != nil {
            try put(file, b + name, weight, layer: l, want: want, described)
        }
    }

    /// The read side of a Hugging Face GPT-2 block, each tensor set when the file has it:
    /// ln_1 / ln_2 weight and bias; attn.c_attn.weight, Conv1D (d_model, 3·n_heads·d_head) with
    /// the query, key and value columns one after the other, each head's d_head together, viewed
    /// (no copy of the file's order) as three (n_heads, d_model, d_head) weights, and its bias
    /// (3·n_heads·d_head) as three (n_heads, d_head); attn.c_proj.bias; mlp.c_fc.weight (d_model,
    /// d_ff) and bias; mlp.c_proj.bias.
    private func putGPT2ReadSide(_ file: SafetensorsFile, prefix p: String, layer l: Int) throws(NodeWriteError) {
        let d = dims, b = p + "h.\(l).", inner = d.nHeads * d.dHead
        let tensors: [(String, WeightLocation, [Int], String)] = [
            ("ln_1.weight", .layerNormGainPreAttn, [d.dModel], "(d_model,)"),
            ("ln_1.bias", .layerNormBiasPreAttn, [d.dModel], "(d_model,)"),
            ("ln_2.weight", .layerNormGainPreMLP, [d.dModel], "(d_model,)"),
            ("ln_2.bias", .layerNormBiasPreMLP, [d.dModel], "(d_model,)"),
            ("attn.c_proj.bias", .attnOutBias, [d.dModel], "(d_model,)"),
            ("mlp.c_fc.weight", .mlpToHidden, [d.dModel, d.dFF], "Conv1D (d_model, d_ff)"),
            ("mlp.c_fc.bias", .mlpInBias, [d.dFF], "(d_ff,)"),
            ("mlp.c_proj.bias", .mlpOutBias, [d.dModel], "(d_model,)"),
        ]
        for (name, weight, want, described) in tensors where file[b + name] != nil {
            try put(file, b + name, weight, layer: l, want: want, described)
        }
        let parts: [WeightLocation] = [.attnToQuery, .attnToKey, .attnToValue]
        let biases: [WeightLocation] = [.attnQueryBias, .attnKeyBias, .attnValueBias]
        if let w = file[b + "attn.c_attn.weight"] {
            guard w.shape == [d.dModel, 3 * inner] else {
                throw .shapeMismatch("\(file.label): \(w.name) has shape \(w.shape), not Conv1D (d_model, 3·n_heads·d_head) = \([d.dModel, 3 * inner])")
            }
            for (i, weight) in parts.enumerated() {  // (h, m, e) is at m·3·inner + i·inner + h·d_head + e
                let view = try file.view(w, shape: [d.nHeads, d.dModel, d.dHead], strides: [d.dHead, 3 * inner, 1],
                                         offset: i * inner)
                try put(file, w, weight, layer: l, view: view)
            }
        }
        if let bias = file[b + "attn.c_attn.bias"] {
            guard bias.shape == [3 * inner] else {
                throw .shapeMismatch("\(file.label): \(bias.name) has shape \(bias.shape), not (3·n_heads·d_head) = \([3 * inner])")
            }
            for (i, weight) in biases.enumerated() {
                let view = try file.view(bias, shape: [d.nHeads, d.dHead], strides: [d.dHead, 1], offset: i * inner)
                try put(file, bias, weight, layer: l, view: view)
            }
        }
    }

    /// Sets the tensor `name`, which must have shape `want`.
    private func put(_ file: SafetensorsFile, _ name: String, _ weight: WeightLocation, layer: Int,
                     want: [Int], _ described: String) throws(NodeWriteError) {
        let e = try file.require(name)
        guard e.shape == want else {
            throw .shapeMismatch("\(file.label): \(name) has shape \(e.shape), not \(described) = \(want)")
        }
        try put(file, e, weight, layer: layer, view: file.view(e))
    }

    private func put(_ file: SafetensorsFile, _ entry: SafetensorsEntry, _ weight: WeightLocation,
                     layer: Int = Model.noLayer, view: TensorView) throws(NodeWriteError) {
        do {
            try setWeight(weight, layer: layer, view: view, copy: !file.borrowable(view), owner: file.owner(of: entry))
        } catch {
            throw error.prefixed("\(file.label): \(entry.name): ")
        }
    }

    /// Sets the SAELens autoencoder in `path` (a directory holding `cfg.json` and
    /// `sae_weights.safetensors`, or that .safetensors file itself) as the autoencoder of
    /// `nodeType` at `layer`. Its input kind comes from cfg.json's `hook_name`.
    package func loadAutoencoder(saeLensAt path: String, nodeType: NodeType, layer: Int) throws(NodeWriteError) {
        guard nodeType.isLatent else {
            throw .invalidArgument("node_type \(nodeType.name) is not an autoencoder latent type")
        }
        try checkLayer(layer, "layer")
        try ensureEmptySlot(nodeType, layer: layer)
        let isFile = path.hasSuffix(".safetensors")
        let dir = isFile ? Model.directory(of: path) : path
        let weightsPath = isFile ? path : dir + "/sae_weights.safetensors"
        let cfgPath = dir + "/cfg.json"
        let cfgBytes = try readSmallFile(cfgPath)
        let cfg = try parseJSON(cfgBytes.buffer, what: cfgPath)
        guard case .object = cfg else { throw .invalidArgument("\(cfgPath): not a JSON object") }
        guard let hook = cfg["hook_name"]?.string ?? cfg["metadata"]?["hook_name"]?.string else {
            throw .invalidArgument("\(cfgPath): no \"hook_name\" string (nor metadata.hook_name)")
        }
        let (hookLayer, input) = try Model.autoencoderInput(hookName: hook, cfgPath)
        guard hookLayer == layer else {
            throw .invalidArgument("\(cfgPath): hook_name \(clip(hook)) is at layer \(hookLayer), not layer = \(layer)")
        }
        let file = try SafetensorsFile(path: weightsPath)
        let dec = try file.require("W_dec")
        guard dec.shape.count == 2 else {
            throw .shapeMismatch("\(weightsPath): W_dec has shape \(dec.shape), not (d_sae, d_in)")
        }
        for (key, axis) in [("d_sae", 0), ("d_in", 1)] {
            if let v = cfg[key]?.integer, v != dec.shape[axis] {
                throw .shapeMismatch("\(weightsPath): W_dec has shape \(dec.shape), but \(cfgPath) says \(key) = \(v)")
            }
        }
        let view = try file.view(dec)
        try file.ensureUnchanged()
        do {
            try setAutoencoder(nodeType, layer: layer, input: input, decoder: view, copy: !file.borrowable(view),
                               owner: file.owner(of: dec))
        } catch {
            throw error.prefixed("\(weightsPath): W_dec: ")
        }
    }

    /// The directory part of a path ("." when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The number of layers: every tensor named `prefix`L.… must have a canonical decimal L,
    /// and the layers found must be 0 ..< n without gaps.
    private static func layerCount(_ file: SafetensorsFile, prefix: String, required: String) throws(NodeWriteError) -> Int {
        var layers: [Int: String] = [:]  // layer -> a tensor of it
        for e in file.entries where e.name.hasPrefix(prefix) {
            let rest = e.name.utf8.dropFirst(prefix.utf8.count)
            guard let dot = rest.firstIndex(of: UInt8(ascii: ".")),
                  let layer = canonicalInteger(Substring(rest[rest.startIndex..<dot])) else {
                throw .invalidArgument("\(file.label): tensor \(clip(e.name)): no layer number after \(prefix)")
            }
            if layers[layer] == nil { layers[layer] = e.name }
        }
        guard !layers.isEmpty else {
            throw .missingInput("\(file.label): no \(prefix)0.\(required)")
        }
        let n = layers.count
        if let gap = (0..<n).first(where: { layers[$0] == nil }) {
            let beyond = layers.keys.max() ?? 0
            throw .shapeMismatch("\(file.label): layers must be 0 ... n_layers-1 without gaps: layer \(gap) is missing "
                                 + "(\(prefix)\(gap).\(required)), but \(clip(layers[beyond] ?? "")) is there")
        }
        return n
    }

    /// GPT-2's configuration: n_head (required), what else is given to cross-check, and from
    /// config.json the LayerNorm epsilon and MLP activation (nil: not given; GPT-2's defaults,
    /// 1e-5 and gelu_new, are the library's). `readSide` is false when the edge DSTs could not
    /// read the blocks as config.json describes them (an activation_function nodewrite does not
    /// differentiate, attention scores not divided by sqrt(d_head)): the read side is then not
    /// loaded, so the edge DSTs refuse (a missing weight) rather than compute something else.
    private struct GPT2Config {
        var nHeads: Int
        var nLayers: Int?, dModel: Int?, dFF: Int?
        var source: String
        var layerNormEpsilon: Double? = nil
        var activation: MLPActivation? = nil
        var readSide = true
    }

    private static func gpt2Config(_ file: SafetensorsFile, configDirectory: String?) throws(NodeWriteError) -> GPT2Config {
        if let text = file.metadata["n_head"] {
            guard let n = canonicalInteger(Substring(text)), n >= 1 else {
                throw .invalidArgument("\(file.label): __metadata__ n_head = \"\(clip(text))\" is not a positive integer")
            }
            return GPT2Config(nHeads: n, source: "\(file.label) __metadata__")
        }
        guard let dir = configDirectory, !FileBytes.absent(dir + "/config.json") else {
            throw .invalidArgument("\(file.label): n_head is not in the weights: put it in the file's __metadata__ "
                                   + "(\"n_head\") or a config.json next to it; neither is there")
        }
        let path = dir + "/config.json"
        let bytes = try readSmallFile(path)
        let json = try parseJSON(bytes.buffer, what: path)
        guard case .object = json else { throw .invalidArgument("\(path): not a JSON object") }
        guard let nHeads = (json["n_head"] ?? json["num_attention_heads"])?.integer, nHeads >= 1 else {
            throw .invalidArgument("\(path): no positive integer \"n_head\"")
        }
        func int(_ key: String) -> Int? { json[key]?.integer }  // null (n_inner: 4·n_embd) reads as nil
        var config = GPT2Config(nHeads: nHeads, nLayers: int("n_layer"), dModel: int("n_embd"), dFF: int("n_inner"),
                                source: path)
        if let value = json["layer_norm_epsilon"] {
            guard case .number(let text) = value, let epsilon = Double(text) else {
                throw .invalidArgument("\(path): layer_norm_epsilon is \(value.kindName), not a number")
            }
            config.layerNormEpsilon = epsilon
        }
        if let value = json["activation_function"] {
            guard let name = value.string else {
                throw .invalidArgument("\(path): activation_function is \(value.kindName), not a string")
            }
            switch name {  // Hugging Face's ACT2FN names
            case "gelu_new", "gelu_fast", "gelu_pytorch_tanh": config.activation = .geluTanh
            case "gelu": config.activation = .geluErf
            case "relu": config.activation = .relu
            default: config.readSide = false
            }
        }
        if case .bool(false)? = json["scale_attn_weights"] { config.readSide = false }
        if case .bool(true)? = json["scale_attn_by_inverse_layer_idx"] { config.readSide = false }
        return config
    }
}

extension CheckpointFormat {
    /// Which layout the file holds, from its tensor names.
    package static func detect(_ file: SafetensorsFile) throws(NodeWriteError) -> CheckpointFormat {
        if file["blocks.0.attn.W_O"] != nil { return .transformerLens }
        if file["transformer.h.0.attn.c_proj.weight"] != nil { return .huggingFaceGPT2(prefix: "transformer.") }
        if file["h.0.attn.c_proj.weight"] != nil { return .huggingFaceGPT2(prefix: "") }
        throw .invalidArgument("\(file.label): not a checkpoint nodewrite reads: no blocks.0.attn.W_O "
                               + "(TransformerLens) nor [transformer.]h.0.attn.c_proj.weight (Hugging Face GPT-2)")
    }
}

/// A decimal integer without sign or leading zeros ("0", "12"), within Int; else nil.
func canonicalInteger(_ s: Substring) -> Int? {
    let u = s.utf8
    guard let first = u.first, !u.isEmpty, u.count <= 18, first != UInt8(ascii: "0") || u.count == 1 else { return nil }
    var v = 0
    for c in u {
        guard c >= 0x30 && c <= 0x39 else { return nil }
        v = v * 10 + Int(c - 0x30)
    }
    return v
}

extension SafetensorsFile {
    /// Runs `body`, prefixing any error with the file's name.
    func labelled<T>(_ body: () throws(NodeWriteError) -> T) throws(NodeWriteError) -> T {
        do { return try body() } catch { throw error.prefixed("\(label): ") }
    }
}

/// One edge or attribution DST at one layer (nw_derive_node): resolved against the model, the
/// store and the node argument when made (shape, node, layer and autoencoder checked); `derive`
/// reads what it needs, checks it, and only then writes. Every output element is written.
package struct EdgeRun {
    package let dst: DerivedScalar
    package let spec: EdgeSpec
    /// TDB's output shape.
    package let shape: [Int]
    package let count: Int
    let inputs: EdgeInputs
    let layer: Int
    let node: EdgeNode?
    let tokens: Int
    let outputZeroed: Bool
    /// An in-edge's upstream write, read when the run is made: its activation's row count is
    /// checked against T before the output is (a disagreement names both entries, not `out`).
    let up: UpstreamWrite?

    package init(_ dst: DerivedScalar, model: Model, store: ActivationStore, layer: Int, node: EdgeNode?,
                 detach: Bool, threads: Int, outputZeroed: Bool = false) throws(NodeWriteError) {
        let name = dst.spec.name
        guard let spec = dst.spec.edge else {
            throw .invalidArgument("dst: \(name) is a write-family DST and takes no node; derive it with nw_derive")
        }
        guard model.causal else {
            throw .unsupported("model: \(name) follows TDB's causal attention (keys k <= q); the model is not causal (nw_model_set_causal)")
        }
        let inputs = EdgeInputs(model: model, store: store, threads: threads, detach: detach)
        if spec.hasLayer {
            try model.checkLayer(layer, "layer")
        } else if layer != Model.noLayer {
            throw .indexOutOfRange("layer = \(layer): \(name) belongs to no layer (pass NW_NO_LAYER = -1)")
        }
        try Self.checkNode(spec, name, node, layer: layer, model: model)
        if spec.singleAutoencoder { _ = try inputs.singleAutoencoderType(name) }
        var latents: Int? = nil
        let tokens: Int
        var up: UpstreamWrite? = nil
        switch spec.role {
        case .inEdge(let d):
            let side: Side
            switch d {
            case .query, .key, .value: side = .attention
            case .mlp: side = .mlp
            case .autoencoder:
                guard let type = try inputs.singleAutoencoderType(name) else {
                    throw .missingInput("\(name) needs an autoencoder on the model; none is set")
                }
                let ae = try inputs.autoencoder(type, layer)
                side = ae.side
                latents = ae.latents
            }
            tokens = try inputs.residualTokens(side, layer)
            up = try inputs.upstreamWrite(node.unsafelyUnwrapped.node, tokens: tokens)
        case .subnodeGradient, .outEdge:
            let n = node.unsafelyUnwrapped
            let g = SubnodeGradient(inputs: inputs, node: n, tokens: 0)
            tokens = try inputs.residualTokens(try g.side(), n.node.layer)
            if case .outEdge(.autoencoder) = spec.role {
                guard let type = try inputs.singleAutoencoderType(name) else {
                    throw .missingInput("\(name) needs an autoencoder on the model; none is set")
                }
                latents = try inputs.autoencoder(type, layer).latents
            }
        case .actTimesGrad(let a, _):
            let location = try Self.actTimesGradLocation(a, inputs, name, layer)
            let view = try store.require(location, layer: spec.hasLayer ? layer : Model.noLayer)
            tokens = try inputs.tokens(location, spec.hasLayer ? layer : Model.noLayer)
            if location.dims.last == .latents { latents = view.shape[1] }
        case .latentGradient, .toLatent:
            let ae = try AttentionToLatent(inputs: inputs, layer: layer, tokens: 0, threads: threads).autoencoder()
            latents = ae.latents
            tokens = try inputs.tokens(ae.nodeType.kind.activations[0], layer)
        }
        var shape: [Int] = []
        for dim in spec.dims {
            let size: Int? = switch dim {
            case .tokens: tokens
            case .tokenPairs: tokens.multipliedReportingOverflow(by: tokens &+ 1).overflow ? nil : pairRow(tokens)
            case .latents: latents
            default: model.dims.size(of: dim)
            }
            guard let size else { throw .bufferTooSmall("out: no buffer holds the output of \(name) for T = \(tokens)") }
            shape.append(size)
        }
        var total = 1
        for size in shape {
            let (t, o) = total.multipliedReportingOverflow(by: size)
            guard !o else { throw .bufferTooSmall("out: no buffer holds an output of shape \(shape)") }
            total = t
        }
        self.dst = dst
        self.spec = spec
        self.shape = shape
        self.count = total
        self.inputs = inputs
        self.layer = layer
        self.node = node
        self.tokens = tokens
        self.outputZeroed = outputZeroed
        self.up = up
    }

    /// The activation act-times-grad reads: the given one, or for the single autoencoder's
    /// latents the generic location if the store has it, else that autoencoder's own.
    static func actTimesGradLocation(_ a: ActivationLocation?, _ inputs: EdgeInputs, _ name: StaticString,
                                     _ layer: Int) throws(NodeWriteError) -> ActivationLocation {
        if let a { return a }
        if inputs.store[.onlineAutoencoderLatent, layer, .forward] != nil { return .onlineAutoencoderLatent }
        guard let type = try inputs.singleAutoencoderType(name) else { return .onlineAutoencoderLatent }
        return type.kind.activations[0]
    }

    /// The node argument against what the DST takes.
    static func checkNode(_ spec: EdgeSpec, _ name: StaticString, _ node: EdgeNode?, layer: Int, model: Model) throws(NodeWriteError) {
        guard let node else {
            guard spec.node == .none else {
                let what = switch spec.node {
                case .upstream: "the upstream node"
                case .subnode: "the downstream subnode"
                default: "the trace latent (attention_autoencoder_latent, token NW_INDEX_NONE)"
                }
                throw .invalidArgument("node is NULL but \(name) needs \(what)")
            }
            return
        }
        let n = node.node
        guard spec.node != .none else { throw .invalidArgument("node: \(name) takes no node; pass NULL") }
        try model.checkLayer(n.layer, "node.layer")
        switch spec.node {
        case .upstream:
            guard node.subnode == .none else {
                throw .invalidArgument("subnode = \(node.subnode.rawValue): an upstream node of \(name) is a whole node (an attention head without Q, K or V); pass NW_SUBNODE_NONE")
            }
        case .subnode:
            if n.nodeType == .attentionHead {
                guard node.subnode != .none else {
                    throw .invalidArgument("subnode: an attention head as the downstream subnode of \(name) needs NW_SUBNODE_Q, NW_SUBNODE_K or NW_SUBNODE_V (TDB's q_k_or_v)")
                }
            } else if node.subnode != .none {
                throw .invalidArgument("subnode = \(node.subnode.rawValue): only attention heads have Q, K and V subnodes; pass NW_SUBNODE_NONE for \(n.nodeType.name)")
            }
            if case .subnodeGradient = spec.role, n.layer != layer {
                throw .invalidArgument("layer = \(layer): \(name) is computed at the subnode's layer (node.layer = \(n.layer)); pass layer = node.layer")
            }
        case .traceLatent:
            guard n.nodeType == .attentionAutoencoderLatent else {
                throw .invalidArgument("node.node_type = \(n.nodeType.name): the trace latent of \(name) is an attention_autoencoder_latent")
            }
            guard n.layer == layer else {
                throw .invalidArgument("node.layer = \(n.layer) but layer = \(layer): the trace latent is at the layer asked for")
            }
            guard n.indices[0] == EdgeNode.none, node.subnode == .none else {
                throw .invalidArgument("node.indices[0] = \(n.indices[0]): the trace latent's token is NW_INDEX_NONE (TDB's None); the DST covers every token")
            }
        case .none: break
        }
    }

    /// - Throws: `.invalidArgument` when `out` shares memory with anything the call may read
    ///   (any activation of the store, any weight, decoder or encoder of the model).
    package func ensureDisjoint(_ out: OutputSpan) throws(NodeWriteError) {
        for view in inputs.store.allViews { try out.ensureDisjoint(from: view, "an activation in the store") }
        for view in inputs.model.allViews { try out.ensureDisjoint(from: view, "a weight of the model") }
    }

    /// Writes the output (row-major, `count` floats). On error nothing is written.
    package func derive(into out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        try ensureDisjoint(OutputSpan(out, count: count, "out"))
        let threads = inputs.threads, zeroed = outputZeroed
        switch spec.role {
        case .inEdge(let d):
            let up = up.unsafelyUnwrapped
            let edges = InEdges(inputs: inputs, layer: layer, tokens: tokens, up: up, threads: threads)
            let side: Side
            var ae: EdgeAutoencoder? = nil
            switch d {
            case .query, .key, .value: side = .attention
            case .mlp: side = .mlp
            case .autoencoder:
                ae = try inputs.autoencoder(try inputs.singleAutoencoderType(dst.spec.name).unsafelyUnwrapped, layer)
                side = ae.unsafelyUnwrapped.side
            }
            guard precedes(up.side, up.layer, side, layer) else {
                if !zeroed { fillZeros(out, count, threads: threads) }
                return
            }
            switch d {
            case .query, .key, .value: try edges.attention(d, out: out, zeroed: zeroed)
            case .mlp: try edges.mlp(out: out, zeroed: zeroed)
            case .autoencoder: try edges.autoencoder(ae.unsafelyUnwrapped, out: out, zeroed: zeroed)
            }
        case .subnodeGradient:
            try SubnodeGradient(inputs: inputs, node: node.unsafelyUnwrapped, tokens: tokens).compute(into: out)
        case .outEdge(let upstream):
            try outEdge(upstream, out)
        case .actTimesGrad(let a, let layout):
            let location = try Self.actTimesGradLocation(a, inputs, dst.spec.name, layer)
            let l = spec.hasLayer ? layer : Model.noLayer
            let dims = inputs.dims
            let act = try inputs.store.require(location, layer: l)
            let want: [Int?] = location.dims.map { $0 == .tokens ? tokens : ($0 == .latents ? act.shape[1] : dims.size(of: $0)) }
            let x = try inputs.activation(location, l, .forward, want), g = try inputs.activation(location, l, .backward, want)
            let times = ActTimesGrad(inputs: inputs, threads: threads)
            switch location {
            case .attnQKProbs: times.attention(x, g, tokens: tokens, heads: dims.nHeads, layout: layout, out: out)
            case .residPostEmb: times.tokens(x, g, tokens: tokens, dModel: dims.dModel, out: out)
            default: times.rows(x, g, tokens: tokens, width: want[1] ?? 0, out: out)
            }
        case .latentGradient:
            let l = try inputs.index(node.unsafelyUnwrapped.node, 1, size: shapeLatents())
            try AttentionToLatent(inputs: inputs, layer: layer, tokens: tokens, threads: threads).latentGradient(latent: l, out: out)
        case .toLatent(let form):
            let a = AttentionToLatent(inputs: inputs, layer: layer, tokens: tokens, threads: threads)
            switch form {
            case .flattenedSummedOverHeadsBatched, .perSequenceTokenBatched: try a.batched(form, out: out)
            default:
                let l = try inputs.index(node.unsafelyUnwrapped.node, 1, size: shapeLatents())
                try a.traced(form, latent: l, out: out)
            }
        }
    }

    private func shapeLatents() throws(NodeWriteError) -> Int {
        try AttentionToLatent(inputs: inputs, layer: layer, tokens: tokens, threads: 1).autoencoder().latents
    }

    /// Out-edges at this (upstream) layer onto G of the node's layer.
    private func outEdge(_ upstream: EdgeSpec.Upstream, _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let n = node.unsafelyUnwrapped, threads = inputs.threads
        let gradient = SubnodeGradient(inputs: inputs, node: n, tokens: tokens)
        let downSide = try gradient.side()
        let resolved = try OutEdges(inputs: inputs, tokens: tokens).form(upstream, layer: layer)
        let writer: Side? = resolved?.1
        let reaches = upstream == .tokens || precedes(writer, layer, downSide, n.node.layer)
        let D = inputs.dims.dModel
        if !reaches {
            // Check what the gradient reads all the same, as when it is computed.
            try withScratch(Float.self, count: tokens &* D, "the subnode gradient") { (G) throws(NodeWriteError) in
                try gradient.compute(into: G)
            }
            if !outputZeroed { fillZeros(out, count, threads: threads) }
            return
        }
        try withScratch(Float.self, count: tokens &* D, "the subnode gradient") { (G) throws(NodeWriteError) in
            try gradient.compute(into: G)
            let view = try TensorView(base: UnsafeRawPointer(G), dtype: .float32, shape: [tokens, D], strides: nil, name: "G")
            if let (form, _) = resolved {
                let (dst, layout): (DerivedScalar, DerivedScalarSpec.AttentionLayout) = switch upstream {
                case .attention: (.unflattenedAttnWriteToFinalResidualGrad, .unflattened)
                case .mlp: (.mlpWriteToFinalResidualGrad, .none)
                default: (.onlineAutoencoderWriteToFinalResidualGrad, .none)
                }
                // G is non-zero in a few rows (one row for V, MLP and MLP-side latent subnodes). The
                // (T, T, heads) projection computes every query row unless its output holds zeros,
                // and then only the rows where G is non-zero: zero it first. The (T, width)
                // projections fuse their zero rows already.
                let zeroFirst = upstream == .attention && !outputZeroed
                if zeroFirst { fillZeros(out, count, threads: threads) }
                let run = try DerivedScalarRun(projecting: form, layout: layout, dst: dst, direction: view, threads: threads,
                                               outputZeroed: outputZeroed || zeroFirst)
                try run.derive(into: out)
            } else {
                try OutEdges(inputs: inputs, tokens: tokens).tokens(UnsafePointer(G), out: out)
            }
        }
    }
}

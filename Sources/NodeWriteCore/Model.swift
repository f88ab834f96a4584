/// A transformer's dimensions.
package struct ModelDims: Equatable, Sendable {
    package var nLayers, dModel, nHeads, dHead, dFF: Int

    /// - Throws: `.invalidArgument` if a dimension is below 1 or a weight's element
    ///   count overflows Int64.
    package init(nLayers: Int, dModel: Int, nHeads: Int, dHead: Int, dFF: Int) throws(NodeWriteError) {
        for (value, name) in [(nLayers, "n_layers"), (dModel, "d_model"), (nHeads, "n_heads"),
                              (dHead, "d_head"), (dFF, "d_ff")] where value < 1 {
            throw .invalidArgument("dims.\(name) = \(value) must be at least 1")
        }
        guard nLayers <= Int(Int32.max) else {
            throw .invalidArgument("dims.n_layers = \(nLayers) exceeds the int32 layer index")
        }
        let mlp = dFF.multipliedReportingOverflow(by: dModel)
        let heads = nHeads.multipliedReportingOverflow(by: dHead)
        let attn = heads.partialValue.multipliedReportingOverflow(by: dModel)
        guard !mlp.overflow, !heads.overflow, !attn.overflow else {
            throw .invalidArgument("dims: a weight's element count overflows int64")
        }
        self.nLayers = nLayers; self.dModel = dModel; self.nHeads = nHeads; self.dHead = dHead; self.dFF = dFF
    }

    /// The expected shape of a weight; nil stands for a dimension the weight itself sets
    /// (the unembedding's n_vocab).
    package func shape(of weight: WeightLocation) -> [Int?] { weight.dims.map { size(of: $0) } }
}

/// An autoencoder's decoder, (n_latents, n_inputs), and what it was trained on.
package struct Autoencoder: Sendable {
    package let decoder: WeightStorage
    package let input: AutoencoderInput
    package var latentCount: Int { decoder.view.shape[0] }
}

/// Dimensions, output weights and autoencoders of a transformer. Configure it from
/// one thread; afterwards it is only read.
package final class Model: @unchecked Sendable {
    package let dims: ModelDims
    private var weights: [Key<WeightLocation>: WeightStorage] = [:]
    private var autoencoders: [Key<NodeType>: Autoencoder] = [:]
    /// Encoders of autoencoder slots, each valid while its slot holds the decoder it was set with
    /// (see Edges/AutoencoderEncoders.swift).
    var encoders: [Key<NodeType>: AutoencoderEncoder] = [:]
    /// The LayerNorm epsilon of the blocks' LayerNorms as it was set (TDB's 1e-5), which
    /// edges recompute; set it with `setLayerNormEpsilon`.
    package private(set) var layerNormEpsilonSetting: Double = 1e-5
    /// The epsilon the float32 edge math uses.
    package var layerNormEpsilon: Float { Float(layerNormEpsilonSetting) }
    /// The MLP's activation function, which edges differentiate (TDB's tanh GELU).
    package var mlpActivation: MLPActivation = .geluTanh

    /// - Throws: `.invalidArgument` for an epsilon that is not finite or not above 0 in float32.
    package func setLayerNormEpsilon(_ epsilon: Double) throws(NodeWriteError) {
        guard epsilon.isFinite, Float(epsilon) > 0, Float(epsilon).isFinite else {
            throw .invalidArgument("layer_norm_epsilon = \(epsilon) must be finite and above 0 in float32 (TDB's and TransformerLens's default is 1e-5)")
        }
        layerNormEpsilonSetting = epsilon
    }

    struct Key<Kind: Hashable>: Hashable {
        let kind: Kind
        let layer: Int
    }

    /// Whether attention is causal (a query attends to keys <= itself); see `Causality.swift`.
    package var causal = true

    package init(dims: ModelDims) { self.dims = dims }

    /// Sets `weight` at `layer` (`noLayer` for a weight of no layer) after checking the
    /// view's shape against the dimensions.
    /// A borrowed view's memory is kept alive by the caller, or by `owner` when given.
    package func setWeight(_ weight: WeightLocation, layer: Int, view: TensorView, copy: Bool,
                           owner: AnyObject? = nil) throws(NodeWriteError) {
        if weight.hasLayer {
            try checkLayer(layer, "layer")
        } else if layer != Model.noLayer {
            throw .indexOutOfRange("layer = \(layer): weight \(weight.name) belongs to no layer (pass NW_NO_LAYER = -1)")
        }
        let name = "weight \(weight.name)"
        let expected = dims.shape(of: weight)
        let matches = view.ndim == expected.count
            && zip(view.shapeArray, expected).allSatisfy { size, want in want.map { $0 == size } ?? (size >= 1) }
        guard matches else {
            let described = expected.map { $0.map(String.init) ?? "n_vocab >= 1" }.joined(separator: ", ")
            throw .shapeMismatch("\(name): shape \(view.shapeArray) does not match the model's (\(described))")
        }
        let storage = copy ? try WeightStorage(copying: view, name: name) : WeightStorage(borrowing: view, owner: owner)
        weights[Key(kind: weight, layer: layer)] = storage
    }

    /// The layer of weights that belong to no layer.
    package static let noLayer = -1

    /// Sets the decoder of the autoencoder of latent node type `nodeType` at `layer`.
    package func setAutoencoder(_ nodeType: NodeType, layer: Int, input: AutoencoderInput,
                               decoder view: TensorView, copy: Bool, owner: AnyObject? = nil) throws(NodeWriteError) {
        guard nodeType.isLatent else {
            throw .invalidArgument("node_type \(nodeType.name) is not an autoencoder latent type")
        }
        try checkLayer(layer, "layer")
        try ensureEmptySlot(nodeType, layer: layer)
        let inputs = dims.size(of: input.inputDim) ?? 0, what = input.inputDim.symbol
        guard view.shape[1] == inputs else {
            throw .shapeMismatch("decoder: shape \(view.shapeArray) must be (n_latents, \(what) = \(inputs))")
        }
        let storage = copy ? try WeightStorage(copying: view, name: "decoder")
                           : WeightStorage(borrowing: view, owner: owner)
        autoencoders[Key(kind: nodeType, layer: layer)] = Autoencoder(decoder: storage, input: input)
        encoders[Key(kind: nodeType, layer: layer)] = nil  // an encoder belongs to the decoder it was set with
    }

    /// Empties the autoencoder slot of `nodeType` at `layer` (empty already is not an error).
    /// Derivers made earlier keep the decoder they captured.
    package func removeAutoencoder(_ nodeType: NodeType, layer: Int) throws(NodeWriteError) {
        guard nodeType.isLatent else {
            throw .invalidArgument("node_type \(nodeType.name) is not an autoencoder latent type")
        }
        try checkLayer(layer, "layer")
        autoencoders[Key(kind: nodeType, layer: layer)] = nil
        encoders[Key(kind: nodeType, layer: layer)] = nil
    }

    package func weight(_ weight: WeightLocation, layer: Int) -> WeightStorage? {
        weights[Key(kind: weight, layer: layer)]
    }

    /// A weight the caller needs, or `.missingInput` naming it.
    package func require(_ weight: WeightLocation, layer: Int) throws(NodeWriteError) -> WeightStorage {
        guard let storage = self.weight(weight, layer: layer) else {
            let at = weight.hasLayer ? " at layer \(layer)" : ""
            throw .missingInput("weight \(weight.name)\(at) is not set on the model")
        }
        return storage
    }

    /// attn.to_residual at `layer` as one (n_heads · d_head, d_model) matrix: a view of the same
    /// memory when its strides allow, else a contiguous float32 copy.
    package func headRows(layer: Int) throws(NodeWriteError) -> WeightStorage {
        let w = try require(.attnToResidual, layer: layer)
        let v = w.view, rows = dims.nHeads &* dims.dHead
        // Row h · d_head + c is at h · strides[0] + c · strides[1]: one stride when these agree.
        func rowStride(_ v: TensorView) -> Int? {
            if dims.dHead == 1 { return v.strides[0] }
            if dims.nHeads == 1 || v.strides[0] == v.strides[1] &* dims.dHead { return v.strides[1] }
            return nil
        }
        let source = rowStride(v) == nil ? try WeightStorage(copying: v, name: "weight attn.to_residual") : w
        let s = source.view
        let view = try TensorView(base: s.base, dtype: s.dtype, shape: [rows, dims.dModel],
                                  strides: [rowStride(s) ?? 0, s.strides[2]], name: "weight attn.to_residual")
        return WeightStorage(borrowing: view, owner: source)
    }

    /// Every view of weights, decoders and encoders the model holds (for overlap checks).
    package var allViews: [TensorView] {
        weights.values.map(\.view) + autoencoders.values.map(\.decoder.view)
            + encoders.values.flatMap { [$0.weight.view] + [$0.latentBias?.view, $0.preBias?.view].compactMap { $0 } }
    }

    /// The latent node types that hold an autoencoder at some layer.
    package var autoencoderNodeTypes: [NodeType] {
        NodeType.allCases.filter { t in autoencoders.keys.contains { $0.kind == t } }
    }

    package func autoencoder(_ nodeType: NodeType, layer: Int) -> Autoencoder? {
        autoencoders[Key(kind: nodeType, layer: layer)]
    }

    func checkLayer(_ layer: Int, _ name: String) throws(NodeWriteError) {
        guard layer >= 0, layer < dims.nLayers else {
            throw .indexOutOfRange("\(name) = \(layer) is out of range for a model of \(dims.nLayers) layers")
        }
    }
}

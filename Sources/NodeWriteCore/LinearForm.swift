/// Every node's write is one linear form, `w = s · (b @ B)`: a scalar activation s times a
/// base row b (length K) times a block B (K × d_model) of an output weight.
///
/// | node | s | b | B |
/// | --- | --- | --- | --- |
/// | MLP neuron (t, n) | post_act[t, n] | e_n | mlp.to_residual |
/// | attention head (q, k, h) | p[q, k, h] | v[k, h, :] | attn.to_residual[h] |
/// | residual-stream latent (t, i) | z[t, i] | e_i | decoder |
/// | MLP-autoencoder latent (t, i) | z[t, i] | decoder[i, :] | mlp.to_residual |
/// | latent of an autoencoder on attention's z (t, i) | z[t, i] | decoder[i, :] | attn.to_residual as (heads · d_head, d_model) |
///
/// `NodeSource` is the model's half (resolved when a deriver is made, so a deriver keeps
/// the weights it saw); `LayerForm` adds the store's half.
package struct NodeSource: Sendable {
    package let nodeType: NodeType
    package let layer: Int
    package let dims: ModelDims
    /// The size of the node's last index: d_ff, n_heads or n_latents.
    package let width: Int
    package let blocks: Blocks
    /// The model's causality when this was made (see `Causality.swift`).
    package let causal: Bool

    /// Where the rows b @ B come from.
    package enum Blocks: Sendable {
        /// b = e_r: the write is s · rows[r] (MLP neurons, residual-stream latents).
        case rows(WeightStorage)
        /// b = v[k, h, :], B = attn.to_residual[h].
        case heads(WeightStorage)
        /// b = decoder[i, :], B = mlp.to_residual (autoencoders on MLP post-activations), or
        /// attn.to_residual as (heads · d_head, d_model) (autoencoders on attention's z).
        case decodedRows(decoder: WeightStorage, through: WeightStorage)
    }

    /// - Throws: `.indexOutOfRange` for the layer; `.missingInput` for a weight or
    ///   autoencoder the model lacks.
    package init(model: Model, nodeType: NodeType, layer: Int) throws(NodeWriteError) {
        try model.checkLayer(layer, "layer")
        let kind = nodeType.kind
        switch nodeType {
        case .mlpNeuron:
            blocks = .rows(try model.require(.mlpToResidual, layer: layer))
            width = model.dims.dFF
        case .attentionHead:
            blocks = .heads(try model.require(.attnToResidual, layer: layer))
            width = model.dims.nHeads
        case .autoencoderLatent, .mlpAutoencoderLatent, .attentionAutoencoderLatent:
            guard let ae = model.autoencoder(nodeType, layer: layer) else {
                throw .missingInput("no autoencoder for \(kind.name) at layer \(layer) is set on the model")
            }
            switch ae.input {
            case .mlpPostAct: blocks = .decodedRows(decoder: ae.decoder, through: try model.require(.mlpToResidual, layer: layer))
            case .residual: blocks = .rows(ae.decoder)
            case .attnZ: blocks = .decodedRows(decoder: ae.decoder, through: try model.headRows(layer: layer))
            }
            width = ae.latentCount
        }
        self.nodeType = nodeType
        self.layer = layer
        self.dims = model.dims
        self.causal = model.causal
    }

    /// The raw activations its writes read, in TDB's order.
    package var requirements: [ActivationLocation] { nodeType.kind.activations }

    /// The store's half, checked against the model: every activation present and of the
    /// right shape.
    package func resolve(_ store: ActivationStore) throws(NodeWriteError) -> LayerForm {
        let kind = nodeType.kind
        let scalars = try store.require(kind.activations[0], layer: layer)
        guard scalars.shape[scalars.ndim - 1] == width else {
            throw .shapeMismatch("activation \(kind.activations[0].name) at layer \(layer): shape \(scalars.shapeArray) must end in \(kind.width.symbol) = \(width)")
        }
        var values: TensorView? = nil
        if case .heads = blocks {
            let keys = scalars.shape[1]
            let v = try store.require(.attnValue, layer: layer)
            guard v.shape[0] == keys, v.shape[1] == dims.nHeads, v.shape[2] == dims.dHead else {
                throw .shapeMismatch("activation attn.v at layer \(layer): shape \(v.shapeArray) must be (T_k, n_heads, d_head) = \([keys, dims.nHeads, dims.dHead]) to match attn.qk_probs \(scalars.shapeArray)")
            }
            values = v
            if causal { try store.ensureCausal(scalars, layer: layer) }
        }
        return LayerForm(source: self, scalars: scalars, values: values)
    }

    /// Checks a node's indices that do not depend on the store (all but the tokens).
    package func checkSlot(_ indices: NodeIndices) throws(NodeWriteError) {
        let last = nodeType.indexCount - 1
        _ = try resolveIndex(indices[last], size: width, dimension: last, what: indexName(last))
    }

    func indexName(_ i: Int) -> String { "node.indices[\(i)] (\(nodeType.kind.indexNames[i]))" }
}

/// A node's tensor indices in TDB's order (unused entries 0).
package typealias NodeIndices = InlineArray<3, Int>

/// One node resolved against a layer form: every index in range.
package struct ResolvedNode: Sendable {
    /// The token its write lands on.
    package var token: Int
    /// The key token (attention heads; 0 otherwise).
    package var key: Int
    /// The neuron, head or latent.
    package var slot: Int
    /// The scalar s of the form.
    package var scalar: Float

    package init() { token = 0; key = 0; slot = 0; scalar = 0 }
}

/// A node type's writes at one layer, resolved against a model and a store.
package struct LayerForm {
    package let source: NodeSource
    /// The activation holding the scalars: (T, width) or (T, T_k, n_heads).
    package let scalars: TensorView
    /// attn.v for attention heads.
    package let values: TensorView?

    package var tokens: Int { scalars.shape[0] }
    package var dModel: Int { source.dims.dModel }

    /// Resolves a node's indices (negative ones count from the end).
    /// - Throws: `.indexOutOfRange` naming the index.
    @inline(__always)
    package func resolve(_ indices: NodeIndices) throws(NodeWriteError) -> ResolvedNode {
        let count = source.nodeType.indexCount
        var node = ResolvedNode()
        node.token = try resolveIndex(indices[0], size: tokens, dimension: 0, what: source.indexName(0))
        node.slot = try resolveIndex(indices[count - 1], size: source.width, dimension: count - 1,
                                     what: source.indexName(count - 1))
        if count == 3 {
            node.key = try resolveIndex(indices[1], size: scalars.shape[1], dimension: 1, what: source.indexName(1))
            // A causal model's key after the query writes nothing, and nothing of it is read.
            node.scalar = source.causal && node.key > node.token ? 0 : scalars.value(at: scalars.offset(node.token, node.key, node.slot))
        } else {
            node.scalar = scalars.value(at: scalars.offset(node.token, node.slot))
        }
        return node
    }
}

/// Resolves a Python-style index (negative counts from the end) against a dimension
/// of `size`, or throws TDB's IndexError as `.indexOutOfRange`.
@inline(__always)
func resolveIndex(_ index: Int, size: Int, dimension: Int, what: @autoclosure () -> String) throws(NodeWriteError) -> Int {
    let resolved = index < 0 ? index &+ size : index  // no overflow: size >= 0
    guard resolved >= 0, resolved < size else {
        throw .indexOutOfRange("\(what()): index \(index) is out of bounds for dimension \(dimension) with size \(size)")
    }
    return resolved
}

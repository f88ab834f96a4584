/// The node-write deriver of one node (TDB's SINGLE_NODE_WRITE scalar deriver): knows
/// which raw activations it reads and derives the node's residual-stream write from a
/// store of them.
///
/// Everything that depends on the model is checked when it is made; everything that
/// depends on the activations is checked before anything is written. The attention
/// path multiplies one probability, one value vector and one head's output weights.
public struct NodeWriteDeriver: Sendable {
    public let node: NodeIndex
    public let dims: ModelDims
    private let plan: Plan

    /// What the write is made of, resolved against the model.
    private enum Plan: Sendable {
        /// post_act[t, neuron] * W_out[neuron, :]
        case mlp(neuron: Int, wOut: WeightStorage)
        /// probs[q, k, head] * v[k, head, :] @ W_O[head]
        case attention(head: Int, wO: WeightStorage)
        /// latent[t, i] * decoder[i, :], through W_out when the input is MLP post-activations
        case latent(latent: Int, decoder: WeightStorage, wOut: WeightStorage?)
    }

    /// The token row and the input values a derive reads, checked against the store.
    private struct Inputs {
        let row: Int
        let tokens: Int
        let scale: Float
        /// attention only: v and the element offset of v[k, head, 0]
        let value: TensorView?
        let valueOffset: Int
    }

    /// - Throws: `.indexOutOfRange` for the layer or a neuron, head or latent index;
    ///   `.missingInput` for a weight or autoencoder the model lacks.
    public init(model: Model, node: NodeIndex) throws(NodeWriteError) {
        let dims = model.dims
        try model.checkLayer(node.layer, "node.layer")
        let layer = node.layer
        func weight(_ w: WeightLocation) throws(NodeWriteError) -> WeightStorage {
            guard let s = model.weight(w, layer: layer) else {
                throw .missingInput("weight \(w.name) at layer \(layer) is not set on the model")
            }
            return s
        }
        switch node.nodeType {
        case .mlpNeuron:
            let n = try resolveIndex(node.indices[1], size: dims.dFF, dimension: 1, what: "node.indices[1] (neuron)")
            plan = .mlp(neuron: n, wOut: try weight(.mlpToResidual))
        case .attentionHead:
            let h = try resolveIndex(node.indices[2], size: dims.nHeads, dimension: 2, what: "node.indices[2] (head)")
            plan = .attention(head: h, wO: try weight(.attnToResidual))
        case .autoencoderLatent, .mlpAutoencoderLatent, .attentionAutoencoderLatent:
            guard let ae = model.autoencoder(node.nodeType, layer: layer) else {
                throw .missingInput("no autoencoder for \(node.nodeType.name) at layer \(layer) is set on the model")
            }
            let i = try resolveIndex(node.indices[1], size: ae.latentCount, dimension: 1, what: "node.indices[1] (latent)")
            plan = .latent(latent: i, decoder: ae.decoder,
                           wOut: ae.input == .mlpPostAct ? try weight(.mlpToResidual) : nil)
        }
        self.node = node
        self.dims = dims
    }

    /// The raw activations this deriver reads, in TDB's order.
    public var requirements: [(location: ActivationLocation, layer: Int)] {
        switch node.nodeType {
        case .mlpNeuron: [(.mlpPostAct, node.layer)]
        case .attentionHead: [(.attnQKProbs, node.layer), (.attnValue, node.layer)]
        default: [(node.nodeType.latentActivation!, node.layer)]
        }
    }

    /// Number of requirements, without building the array.
    public var requirementCount: Int { node.nodeType == .attentionHead ? 2 : 1 }

    /// (T, d_model): T is the number of (query) tokens in the store's activations.
    /// - Throws: `.missingInput` or `.shapeMismatch`.
    public func outputShape(_ store: ActivationStore) throws(NodeWriteError) -> (rows: Int, columns: Int) {
        let main = try primary(store)
        if case .attention = plan { _ = try values(store, keys: main.shape[1]) }
        return (main.shape[0], dims.dModel)
    }

    /// Writes the write vector into `out[0..<d_model]` and returns its token row.
    /// On error nothing is written.
    public func deriveVector(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) -> Int {
        let inputs = try resolve(store)
        guard out.count >= dims.dModel else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than d_model = \(dims.dModel)")
        }
        compute(inputs, into: out.baseAddress.unsafelyUnwrapped)
        return inputs.row
    }

    /// Writes TDB's (T, d_model) output, zero except the token row, into `out`.
    /// On error nothing is written.
    public func derive(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) {
        let inputs = try resolve(store)
        let (total, overflow) = inputs.tokens.multipliedReportingOverflow(by: dims.dModel)
        guard !overflow, out.count >= total else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than T × d_model = \(inputs.tokens) × \(dims.dModel)")
        }
        let base = out.baseAddress.unsafelyUnwrapped
        base.update(repeating: 0, count: total)
        compute(inputs, into: base + inputs.row * dims.dModel)
    }

    /// Checks the store against the node and the model; nothing is written.
    public func validate(_ store: ActivationStore) throws(NodeWriteError) { _ = try resolve(store) }

    // MARK: - Private

    /// The activation whose first dimension is T.
    private func primary(_ store: ActivationStore) throws(NodeWriteError) -> TensorView {
        let location = requirements0
        let view = try store.require(location, layer: node.layer)
        let width: Int, what: String
        switch plan {
        case .mlp: (width, what) = (dims.dFF, "d_ff")
        case .attention: (width, what) = (dims.nHeads, "n_heads")
        case .latent(_, let decoder, _): (width, what) = (decoder.view.shape[0], "n_latents")
        }
        guard view.shape[view.ndim - 1] == width else {
            throw .shapeMismatch("activation \(location.name) at layer \(node.layer): shape \(view.shapeArray) must end in \(what) = \(width)")
        }
        return view
    }

    private var requirements0: ActivationLocation {
        switch node.nodeType {
        case .mlpNeuron: .mlpPostAct
        case .attentionHead: .attnQKProbs
        default: node.nodeType.latentActivation!
        }
    }

    /// attn.v, checked against attn.qk_probs (`keys` tokens) and the model.
    private func values(_ store: ActivationStore, keys: Int) throws(NodeWriteError) -> TensorView {
        let v = try store.require(.attnValue, layer: node.layer)
        guard v.shape[0] == keys, v.shape[1] == dims.nHeads, v.shape[2] == dims.dHead else {
            throw .shapeMismatch("activation attn.v at layer \(node.layer): shape \(v.shapeArray) must be (T_k, n_heads, d_head) = \([keys, dims.nHeads, dims.dHead])")
        }
        return v
    }

    private func resolve(_ store: ActivationStore) throws(NodeWriteError) -> Inputs {
        let main = try primary(store)
        let tokens = main.shape[0]
        let t = try resolveIndex(node.indices[0], size: tokens, dimension: 0, what: "node.indices[0] (token)")
        switch plan {
        case .mlp(let n, _):
            return Inputs(row: t, tokens: tokens, scale: main.value(at: main.offset(t, n)), value: nil, valueOffset: 0)
        case .latent(let i, _, _):
            return Inputs(row: t, tokens: tokens, scale: main.value(at: main.offset(t, i)), value: nil, valueOffset: 0)
        case .attention(let h, _):
            let keys = main.shape[1]
            let v = try values(store, keys: keys)
            let k = try resolveIndex(node.indices[1], size: keys, dimension: 1, what: "node.indices[1] (key token)")
            return Inputs(row: t, tokens: tokens, scale: main.value(at: main.offset(t, k, h)),
                          value: v, valueOffset: v.offset(k, h, 0))
        }
    }

    /// The write vector into `out[0..<d_model]`; inputs are validated.
    private func compute(_ inputs: Inputs, into out: UnsafeMutablePointer<Float>) {
        let dModel = dims.dModel, scale = inputs.scale
        out.update(repeating: 0, count: dModel)
        switch plan {
        case .mlp(let n, let w):
            let w = w.view
            addScaledRow(out, dModel, scale, w, offset: w.offset(n, 0), stride: w.strides[1])
        case .attention(let h, let w):
            // Σ_c (p · v[k, h, c]) · W_O[h, c, :]
            let w = w.view, v = inputs.value.unsafelyUnwrapped, vStride = v.strides[2], v0 = inputs.valueOffset
            addWeightedRows(out, dModel, rows: dims.dHead, w, offset: w.offset(h, 0, 0),
                            rowStride: w.strides[1], columnStride: w.strides[2]) { c in
                scale * v.value(at: v0 &+ c &* vStride)
            }
        case .latent(let i, let decoder, let wOut):
            let dec = decoder.view
            if let w = wOut?.view {
                // Σ_a (latent · decoder[i, a]) · W_out[a, :]
                let d0 = dec.offset(i, 0), dStride = dec.strides[1]
                addWeightedRows(out, dModel, rows: dims.dFF, w, offset: 0,
                                rowStride: w.strides[0], columnStride: w.strides[1]) { a in
                    scale * dec.value(at: d0 &+ a &* dStride)
                }
            } else {
                addScaledRow(out, dModel, scale, dec, offset: dec.offset(i, 0), stride: dec.strides[1])
            }
        }
    }
}

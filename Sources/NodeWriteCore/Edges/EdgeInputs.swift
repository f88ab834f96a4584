/// What an edge call reads, resolved and checked before anything is written: the model's
/// read-side weights and the store's forward and backward activations as contiguous float32
/// (in place when they are already, else one copy for the call), the single autoencoder, and
/// where a node's write lands and what it is.
final class EdgeInputs {
    let model: Model
    let store: ActivationStore
    let dims: ModelDims
    let threads: Int
    let detach: Bool
    /// Memory the pointers handed out point into (copies made for this call).
    private var kept: [WeightStorage] = []
    /// Every view read (for the overlap check of the output).
    private(set) var views: [(TensorView, String)] = []
    /// The entry T was taken from and its row count, for naming both sides of a disagreement.
    private(set) var tokensSource: (name: String, rows: Int)? = nil

    init(model: Model, store: ActivationStore, threads: Int, detach: Bool) {
        self.model = model
        self.store = store
        self.dims = model.dims
        self.threads = max(1, threads)
        self.detach = detach
    }

    var eps: Float { model.layerNormEpsilon }
    var activation: MLPActivation { model.mlpActivation }
    var scale: Float { Float(1.0 / Double(dims.dHead).squareRoot()) }

    /// Contiguous float32 memory of a view: in place, or a copy kept for the call.
    private func contiguous(_ view: TensorView, _ name: String) throws(NodeWriteError) -> UnsafePointer<Float> {
        views.append((view, name))
        var canonical = view.dtype == .float32
        var expected = 1
        for i in (0..<view.ndim).reversed() where view.shape[i] > 1 {
            if view.strides[i] != expected { canonical = false }
            expected &*= view.shape[i]
        }
        if canonical, let base = view.base { return base.assumingMemoryBound(to: Float.self) }
        let copy = try WeightStorage(copying: view, name: name)
        kept.append(copy)
        return copy.view.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self)
    }

    /// A read-side weight of `layer`, or `.missingInput` naming it and the fix.
    func weight(_ w: WeightLocation, _ layer: Int) throws(NodeWriteError) -> UnsafePointer<Float> {
        guard let storage = model.weight(w, layer: layer) else {
            let at = w.hasLayer ? " at layer \(layer)" : ""
            throw .missingInput("weight \(w.name)\(at) is not set on the model; edges recompute the layer from the residual stream and need the read-side weights (set it with nw_model_set_weight)")
        }
        return try contiguous(storage.view, "weight \(w.name)")
    }

    /// An activation of `pass` at `layer`, checked against `shape` (nil entries: any size >= 1).
    func activation(_ a: ActivationLocation, _ layer: Int, _ pass: Pass, _ shape: [Int?]) throws(NodeWriteError)
        -> UnsafePointer<Float> {
        let view = try store.require(a, layer: layer, pass: pass)
        try check(view, a, layer, pass, shape)
        return try contiguous(view, "activation \(a.name)")
    }

    func check(_ view: TensorView, _ a: ActivationLocation, _ layer: Int, _ pass: Pass, _ shape: [Int?]) throws(NodeWriteError) {
        let ok = view.ndim == shape.count && zip(view.shapeArray, shape).allSatisfy { got, want in want.map { $0 == got } ?? (got >= 1) }
        guard ok else {
            let name = Self.entryName(a, layer, pass)
            // Only the row count disagrees with the entry T was taken from: name both, since
            // either may be the odd one.
            if view.ndim == shape.count, view.ndim >= 1, let rows = shape[0], let source = tokensSource, source.rows == rows,
               view.shape[0] != rows,
               zip(view.shapeArray.dropFirst(), shape.dropFirst()).allSatisfy({ got, want in want.map { $0 == got } ?? (got >= 1) }) {
                throw tokensDisagree(name, view.shape[0])
            }
            let want = shape.map { $0.map(String.init) ?? "any" }.joined(separator: ", ")
            throw .shapeMismatch("\(name): shape \(view.shapeArray) must be (\(want))")
        }
    }

    /// An entry's name in messages: "[the loss gradient of ]activation NAME[ at layer L]".
    static func entryName(_ a: ActivationLocation, _ layer: Int, _ pass: Pass) -> String {
        "\(pass == .backward ? "the loss gradient of " : "")activation \(a.name)\(a.hasLayer ? " at layer \(layer)" : "")"
    }

    /// `.shapeMismatch` naming an entry whose row count differs from the entry T was taken from,
    /// and that one (the single wording of this disagreement on the edge path).
    func tokensDisagree(_ name: String, _ rows: Int) -> NodeWriteError {
        let source = tokensSource ?? (name: "the token count", rows: rows)
        return .shapeMismatch("\(name) has \(rows) rows but \(source.name) has \(source.rows): every activation of one pass has the same T (tokens); make them agree")
    }

    /// T, from an activation that has it first (remembered as the entry T came from).
    func tokens(_ a: ActivationLocation, _ layer: Int, _ pass: Pass = .forward) throws(NodeWriteError) -> Int {
        let rows = try store.require(a, layer: layer, pass: pass).shape[0]
        if tokensSource == nil { tokensSource = (Self.entryName(a, layer, pass), rows) }
        return rows
    }

    /// The residual stream a block of `layer` reads: before attention (resid.post_emb for
    /// layer 0, else resid.post_mlp of the layer before) or before the MLP (resid.post_attn).
    func residualLocation(_ side: Side, _ layer: Int) -> (ActivationLocation, Int) {
        switch side {
        case .attention: layer == 0 ? (.residPostEmb, Model.noLayer) : (.residPostMLP, layer - 1)
        case .mlp: (.residPostAttn, layer)
        }
    }

    func residual(_ side: Side, _ layer: Int, tokens: Int) throws(NodeWriteError) -> UnsafePointer<Float> {
        let (a, l) = residualLocation(side, layer)
        return try activation(a, l, .forward, [tokens, dims.dModel])
    }

    func residualTokens(_ side: Side, _ layer: Int) throws(NodeWriteError) -> Int {
        let (a, l) = residualLocation(side, layer)
        return try tokens(a, l)
    }
}

/// The block a node writes from or reads into.
enum Side {
    case attention, mlp

    /// Where a write of this side's layer `layer` sits in the residual stream (tokens: 0).
    func writePosition(_ layer: Int) -> Int { self == .attention ? 2 &* layer &+ 1 : 2 &* layer &+ 2 }
    /// A reader of this side at `layer` sees the writes before this position.
    func readPosition(_ layer: Int) -> Int { writePosition(layer) }
}

/// Whether a write of `writer` at `writeLayer` (nil: the token embeddings) reaches a reader.
func precedes(_ writer: Side?, _ writeLayer: Int, _ reader: Side, _ readLayer: Int) -> Bool {
    (writer?.writePosition(writeLayer) ?? 0) < reader.readPosition(readLayer)
}

/// The autoencoder an edge reads, resolved: its slot's node type, side, decoder and encoder.
struct EdgeAutoencoder {
    let nodeType: NodeType
    let layer: Int
    let autoencoder: Autoencoder
    let side: Side
    var input: AutoencoderInput { autoencoder.input }
    var latents: Int { autoencoder.latentCount }
}

extension EdgeInputs {
    /// The single autoencoder's node type (TDB's "the" autoencoder): nil when the model holds
    /// none; `.unsupported` when it holds more than one kind, as TDB's AssertionError.
    func singleAutoencoderType(_ what: StaticString) throws(NodeWriteError) -> NodeType? {
        let types = model.autoencoderNodeTypes
        guard types.count <= 1 else {
            let names = types.map { "\($0.name)" }.joined(separator: ", ")
            throw .unsupported("\(what) uses the model's single autoencoder, as TDB does, but the model holds autoencoders of \(names) (TDB raises AssertionError); remove all but one (nw_model_remove_autoencoder)")
        }
        return types.first
    }

    /// The autoencoder of latent node type `type` at `layer`; the generic autoencoder_latent
    /// resolves to the single autoencoder, whichever latent type it was set under.
    func autoencoder(_ type: NodeType, _ layer: Int) throws(NodeWriteError) -> EdgeAutoencoder {
        var slot = type
        if model.autoencoder(type, layer: layer) == nil, type == .autoencoderLatent,
           let single = try singleAutoencoderType("an autoencoder_latent node") {
            slot = single
        }
        guard let ae = model.autoencoder(slot, layer: layer) else {
            throw .missingInput("no autoencoder for \(type.name) at layer \(layer) is set on the model")
        }
        let side: Side
        switch (slot, ae.input) {
        case (.mlpAutoencoderLatent, _), (_, .mlpPostAct): side = .mlp
        case (.attentionAutoencoderLatent, _), (_, .attnZ): side = .attention
        default:
            throw .unsupported("the autoencoder of \(slot.name) at layer \(layer) reads the residual stream, and which block it follows is not known; set it as mlp_autoencoder_latent (resid_delta_mlp) or attention_autoencoder_latent (resid_delta_attn)")
        }
        return EdgeAutoencoder(nodeType: slot, layer: layer, autoencoder: ae, side: side)
    }

    /// The latents of an autoencoder (forward or backward): online_autoencoder_latent if the
    /// store has it (TDB's generic location), else its node type's own location.
    func latents(_ ae: EdgeAutoencoder, _ pass: Pass, tokens: Int, generic: Bool = true) throws(NodeWriteError)
        -> UnsafePointer<Float> {
        let own = ae.nodeType.kind.activations[0]
        let location = generic && store[.onlineAutoencoderLatent, ae.layer, pass] != nil ? .onlineAutoencoderLatent : own
        return try activation(location, ae.layer, pass, [tokens, ae.latents])
    }

    /// The decoder of an autoencoder as contiguous float32.
    func contiguousDecoder(_ ae: EdgeAutoencoder) throws(NodeWriteError) -> UnsafePointer<Float> {
        try contiguous(ae.autoencoder.decoder.view, "decoder")
    }

    /// The encoder of an autoencoder, or `.missingInput` naming the fix.
    func encoder(_ ae: EdgeAutoencoder) throws(NodeWriteError) -> UnsafePointer<Float> {
        guard let e = model.encoder(ae.nodeType, layer: ae.layer) else {
            throw .missingInput("the autoencoder of \(ae.nodeType.name) at layer \(ae.layer) has no encoder; set it with nw_model_set_autoencoder_encoder")
        }
        return try contiguous(e.weight.view, "encoder")
    }
}

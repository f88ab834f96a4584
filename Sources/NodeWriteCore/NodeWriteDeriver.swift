/// The node-write deriver of one node (TDB's SINGLE_NODE_WRITE scalar deriver): knows
/// which raw activations it reads and derives the node's write from a store of them, as
/// a node set of one (so a node's write has the same bits alone and in a set).
///
/// Everything that depends on the model is checked when it is made (and the weights it
/// uses are kept); everything that depends on the activations before anything is written.
package struct NodeWriteDeriver: Sendable {
    package let node: NodeIndex
    package let source: NodeSource

    /// - Throws: `.indexOutOfRange` for the layer or the neuron, head or latent index;
    ///   `.missingInput` for a weight or autoencoder the model lacks.
    package init(model: Model, node: NodeIndex) throws(NodeWriteError) {
        source = try NodeSource(model: model, nodeType: node.nodeType, layer: node.layer)
        try source.checkSlot(node.indices)
        self.node = node
    }

    /// The raw activations this deriver reads, in TDB's order (all at the node's layer).
    package var requirements: [ActivationLocation] { source.requirements }

    /// (T, d_model): T is the number of (query) tokens in the store's activations.
    /// - Throws: `.missingInput` or `.shapeMismatch`.
    package func outputShape(_ store: ActivationStore) throws(NodeWriteError) -> (rows: Int, columns: Int) {
        (try source.resolve(store).tokens, source.dims.dModel)
    }

    /// The node resolved against `store`: the store is read once, then the write is sized,
    /// checked and made from that.
    /// - Throws: `.missingInput` or `.shapeMismatch` (the activations); `.indexOutOfRange`
    ///   (the node's token indices).
    package func bind(_ store: ActivationStore) throws(NodeWriteError) -> BoundNodeWrite {
        let form = try source.resolve(store)
        return BoundNodeWrite(form: form, node: try form.resolve(node.indices))
    }

    /// Writes the write vector into `out[0..<d_model]` and returns its token row.
    /// On error nothing is written.
    package func deriveVector(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) -> Int {
        try bind(store).writeVector(into: out)
    }

    /// Writes TDB's (T, d_model) output, zero except the token row, into `out` (only the
    /// token row when `outputZeroed`: the caller's memory holds zeros already). On error
    /// nothing is written.
    package func derive(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>,
                        outputZeroed: Bool = false) throws(NodeWriteError) {
        try bind(store).write(into: out, outputZeroed: outputZeroed)
    }

    /// Checks the store against the node and the model, and that the outputs share no memory
    /// with what the write reads; nothing is written.
    package func validate(_ store: ActivationStore, outputs out: OutputSpan = .none, _ more: OutputSpan = .none)
        throws(NodeWriteError) {
        let bound = try bind(store)
        try bound.ensureDisjoint(out)
        try bound.ensureDisjoint(more)
    }
}

/// One node's write resolved against a store (`NodeWriteDeriver.bind`): its layer form and
/// resolved indices.
package struct BoundNodeWrite {
    package let form: LayerForm
    let node: ResolvedNode

    /// The token row the write lands on.
    package var token: Int { node.token }

    /// - Throws: `.invalidArgument` when `out` shares memory with what the write reads.
    package func ensureDisjoint(_ out: OutputSpan) throws(NodeWriteError) { try form.ensureDisjoint(out) }

    /// The write vector into `out[0..<d_model]`; returns its token row. On error nothing is written.
    package func writeVector(into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) -> Int {
        guard out.count >= form.dModel else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than d_model = \(form.dModel)")
        }
        try form.ensureDisjoint(OutputSpan(out.baseAddress, count: form.dModel, "out"))
        var resolved = node
        try withUnsafePointer(to: &resolved) { (p) throws(NodeWriteError) in
            try form.writeVectors(UnsafeBufferPointer(start: p, count: 1), into: out.baseAddress.unsafelyUnwrapped)
        }
        return node.token
    }

    /// TDB's (T, d_model) output, zero except the token row (only the token row when
    /// `outputZeroed`). On error nothing is written.
    package func write(into out: UnsafeMutableBufferPointer<Float>, outputZeroed: Bool = false) throws(NodeWriteError) {
        let dModel = form.dModel
        let (total, overflow) = form.tokens.multipliedReportingOverflow(by: dModel)
        guard !overflow else { throw .bufferTooSmall("out: no buffer holds T × d_model = \(form.tokens) × \(dModel) floats") }
        guard out.count >= total else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than T × d_model = \(form.tokens) × \(dModel)")
        }
        try form.ensureDisjoint(OutputSpan(out.baseAddress, count: total, "out"))
        let base = out.baseAddress.unsafelyUnwrapped, token = node.token
        var resolved = node
        try withUnsafePointer(to: &resolved) { (p) throws(NodeWriteError) in
            try form.writeVectors(UnsafeBufferPointer(start: p, count: 1), into: base + token &* dModel)
        }
        guard !outputZeroed else { return }
        base.update(repeating: 0, count: token &* dModel)
        let after = (token &+ 1) &* dModel
        (base + after).update(repeating: 0, count: total &- after)
    }

    /// TDB's single_node_write_to_final_residual_grad: a (T, 1) column, w · g[t] in the row t
    /// the write lands on and 0 elsewhere. On error nothing is written.
    package func projection(_ direction: Direction, into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) {
        guard out.count >= form.tokens else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than T = \(form.tokens)")
        }
        let span = OutputSpan(out.baseAddress, count: form.tokens, "out")
        try form.ensureDisjoint(span)
        try span.ensureDisjoint(from: direction.view, "the direction")
        let dModel = form.dModel
        try withUnsafeTemporaryAllocation(of: Float.self, capacity: dModel) { (w) throws(NodeWriteError) in
            let token = try writeVector(into: w)
            let g = direction.view, offset = direction.shared ? 0 : g.offset(token, 0), stride = g.strides[g.ndim - 1]
            var sum = 0.0
            for j in 0..<dModel { sum += Double(w[j]) * Double(g.value(at: offset &+ j &* stride)) }
            let base = out.baseAddress.unsafelyUnwrapped
            base.update(repeating: 0, count: form.tokens)
            base[token] = Float(sum)
        }
    }
}

extension NodeWriteDeriver {
    /// TDB's single_node_write_to_final_residual_grad: a (T, 1) column, w · g[t] in the row t
    /// the write lands on and 0 elsewhere. On error nothing is written.
    package func projection(_ store: ActivationStore, direction view: TensorView,
                            into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) {
        let form = try source.resolve(store)
        let direction = try Direction(view, dModel: form.dModel, tokens: form.tokens)
        try BoundNodeWrite(form: form, node: try form.resolve(node.indices)).projection(direction, into: out)
    }
}

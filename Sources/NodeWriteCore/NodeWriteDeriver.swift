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

    /// Writes the write vector into `out[0..<d_model]` and returns its token row.
    /// On error nothing is written.
    package func deriveVector(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) -> Int {
        let form = try source.resolve(store)
        var resolved = try form.resolve(node.indices)
        guard out.count >= form.dModel else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than d_model = \(form.dModel)")
        }
        try withUnsafePointer(to: &resolved) { (p) throws(NodeWriteError) in
            try form.writeVectors(UnsafeBufferPointer(start: p, count: 1), into: out.baseAddress.unsafelyUnwrapped)
        }
        return resolved.token
    }

    /// Writes TDB's (T, d_model) output, zero except the token row, into `out`, and
    /// returns its shape. On error nothing is written; `.bufferTooSmall` carries the shape.
    package func derive(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) {
        let form = try source.resolve(store)
        var resolved = try form.resolve(node.indices)
        let dModel = form.dModel, total = try outputCount(form)
        guard out.count >= total else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than T × d_model = \(form.tokens) × \(dModel)")
        }
        let base = out.baseAddress.unsafelyUnwrapped, token = resolved.token
        try withUnsafePointer(to: &resolved) { (p) throws(NodeWriteError) in
            try form.writeVectors(UnsafeBufferPointer(start: p, count: 1), into: base + token &* dModel)
        }
        base.update(repeating: 0, count: token &* dModel)
        let after = (token &+ 1) &* dModel
        (base + after).update(repeating: 0, count: total &- after)
    }

    /// Checks the store against the node and the model; nothing is written.
    package func validate(_ store: ActivationStore) throws(NodeWriteError) {
        _ = try source.resolve(store).resolve(node.indices)
    }

    /// T × d_model, checked for overflow.
    func outputCount(_ form: LayerForm) throws(NodeWriteError) -> Int {
        let (total, overflow) = form.tokens.multipliedReportingOverflow(by: form.dModel)
        guard !overflow else { throw .bufferTooSmall("out: no buffer holds T × d_model = \(form.tokens) × \(form.dModel) floats is too large") }
        return total
    }
}

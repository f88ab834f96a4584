/// Borrowed raw activations keyed by (activation location, layer), in TDB's layouts.
/// Not synchronised: it must not change while a derive reads it.
package struct ActivationStore: @unchecked Sendable {
    struct Key: Hashable {
        let location: ActivationLocation
        let layer: Int
    }

    /// A view, and for attn.qk_probs the causality scan of this entry (a new put, a new scan).
    struct Entry {
        let view: TensorView
        let upperTriangle: UpperTriangleScan?
    }

    private var entries: [Key: Entry] = [:]

    package init() {}

    /// Puts (or replaces) an activation. The view's memory stays the caller's.
    package mutating func put(_ location: ActivationLocation, layer: Int, _ view: TensorView) throws(NodeWriteError) {
        guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        guard view.ndim == location.ndim else {
            throw .shapeMismatch("\(location.name): ndim \(view.ndim) but \(location.ndim) expected")
        }
        entries[Key(location: location, layer: layer)] =
            Entry(view: view, upperTriangle: location == .attnQKProbs ? UpperTriangleScan() : nil)
    }

    package mutating func remove(_ location: ActivationLocation, layer: Int) throws(NodeWriteError) {
        guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        entries[Key(location: location, layer: layer)] = nil
    }

    package mutating func removeAll() { entries.removeAll() }

    package subscript(location: ActivationLocation, layer: Int) -> TensorView? {
        entries[Key(location: location, layer: layer)]?.view
    }

    /// The causality scan of attn.qk_probs at `layer`, if the store has it.
    func upperTriangleScan(layer: Int) -> UpperTriangleScan? {
        entries[Key(location: .attnQKProbs, layer: layer)]?.upperTriangle
    }

    /// The activation, or `.missingInput` naming it.
    func require(_ location: ActivationLocation, layer: Int) throws(NodeWriteError) -> TensorView {
        guard let view = self[location, layer] else {
            throw .missingInput("activation \(location.name) at layer \(layer) is not in the store")
        }
        return view
    }
}

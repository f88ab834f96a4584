/// Borrowed raw activations keyed by (activation location, layer), in TDB's layouts.
/// Not synchronised: it must not change while a derive reads it.
package struct ActivationStore: @unchecked Sendable {
    struct Key: Hashable {
        let location: ActivationLocation
        let layer: Int
    }

    private var entries: [Key: TensorView] = [:]

    package init() {}

    /// Puts (or replaces) an activation. The view's memory stays the caller's.
    package mutating func put(_ location: ActivationLocation, layer: Int, _ view: TensorView) throws(NodeWriteError) {
        guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        guard view.ndim == location.ndim else {
            throw .shapeMismatch("\(location.name): ndim \(view.ndim) but \(location.ndim) expected")
        }
        entries[Key(location: location, layer: layer)] = view
    }

    package mutating func remove(_ location: ActivationLocation, layer: Int) throws(NodeWriteError) {
        guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        entries[Key(location: location, layer: layer)] = nil
    }

    package mutating func removeAll() { entries.removeAll() }

    package subscript(location: ActivationLocation, layer: Int) -> TensorView? {
        entries[Key(location: location, layer: layer)]
    }

    /// The activation, or `.missingInput` naming it.
    func require(_ location: ActivationLocation, layer: Int) throws(NodeWriteError) -> TensorView {
        guard let view = self[location, layer] else {
            throw .missingInput("activation \(location.name) at layer \(layer) is not in the store")
        }
        return view
    }
}

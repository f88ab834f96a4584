/// Borrowed raw activations keyed by (activation location, layer), in TDB's layouts.
/// Not synchronised: it must not change while a derive reads it.
public struct ActivationStore: @unchecked Sendable {
    struct Key: Hashable {
        let location: ActivationLocation
        let layer: Int
    }

    private var entries: [Key: TensorView] = [:]

    public init() {}

    /// Puts (or replaces) an activation. The view's memory stays the caller's.
    public mutating func put(_ location: ActivationLocation, layer: Int, _ view: TensorView) throws(NodeWriteError) {
        guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        guard view.ndim == location.ndim else {
            throw .shapeMismatch("\(location.name): ndim \(view.ndim) but \(location.ndim) expected")
        }
        entries[Key(location: location, layer: layer)] = view
    }

    public mutating func remove(_ location: ActivationLocation, layer: Int) throws(NodeWriteError) {
        guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        entries[Key(location: location, layer: layer)] = nil
    }

    public mutating func removeAll() { entries.removeAll() }

    public subscript(location: ActivationLocation, layer: Int) -> TensorView? {
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

/// Which pass of the model an activation comes from (TDB's `PassType`). Raw values are the C
/// ABI's `nw_pass`.
package enum Pass: Int32, CaseIterable, Sendable {
    /// The activation itself.
    case forward = 0
    /// The loss gradient at the activation (same shape).
    case backward = 1

    package var name: StaticString { self == .forward ? "forward" : "backward" }
}

/// Borrowed raw activations keyed by (activation location, layer, pass), in TDB's layouts.
/// Not synchronised: it must not change while a derive reads it.
package struct ActivationStore: @unchecked Sendable {
    struct Key: Hashable {
        let location: ActivationLocation
        let layer: Int
        let pass: Pass
    }

    /// A view, and for attn.qk_probs the causality scan of this entry (a new put, a new scan).
    struct Entry {
        let view: TensorView
        let upperTriangle: UpperTriangleScan?
    }

    private var entries: [Key: Entry] = [:]

    package init() {}

    /// Puts (or replaces) an activation. The view's memory stays the caller's. An activation
    /// of no layer (resid.post_emb) is put at `Model.noLayer`.
    package mutating func put(_ location: ActivationLocation, layer: Int, _ view: TensorView,
                              pass: Pass = .forward) throws(NodeWriteError) {
        try Self.checkLayer(location, layer)
        guard view.ndim == location.ndim else {
            throw .shapeMismatch("\(location.name): ndim \(view.ndim) but \(location.ndim) expected")
        }
        entries[Key(location: location, layer: layer, pass: pass)] =
            Entry(view: view, upperTriangle: location == .attnQKProbs && pass == .forward ? UpperTriangleScan() : nil)
    }

    package mutating func remove(_ location: ActivationLocation, layer: Int, pass: Pass = .forward) throws(NodeWriteError) {
        try Self.checkLayer(location, layer)
        entries[Key(location: location, layer: layer, pass: pass)] = nil
    }

    private static func checkLayer(_ location: ActivationLocation, _ layer: Int) throws(NodeWriteError) {
        if location.hasLayer {
            guard layer >= 0 else { throw .invalidArgument("layer = \(layer) is negative") }
        } else if layer != Model.noLayer {
            throw .invalidArgument("layer = \(layer): activation \(location.name) belongs to no layer (pass NW_NO_LAYER = -1)")
        }
    }

    package mutating func removeAll() { entries.removeAll() }

    /// Every view the store holds (for overlap checks of calls that may read any of them).
    package var allViews: [TensorView] { entries.values.map(\.view) }

    package subscript(location: ActivationLocation, layer: Int) -> TensorView? {
        entries[Key(location: location, layer: layer, pass: .forward)]?.view
    }

    package subscript(location: ActivationLocation, layer: Int, pass: Pass) -> TensorView? {
        entries[Key(location: location, layer: layer, pass: pass)]?.view
    }

    /// The causality scan of attn.qk_probs at `layer`, if the store has it.
    func upperTriangleScan(layer: Int) -> UpperTriangleScan? {
        entries[Key(location: .attnQKProbs, layer: layer, pass: .forward)]?.upperTriangle
    }

    /// The activation, or `.missingInput` naming it.
    func require(_ location: ActivationLocation, layer: Int, pass: Pass = .forward) throws(NodeWriteError) -> TensorView {
        guard let view = self[location, layer, pass] else {
            let at = location.hasLayer ? " at layer \(layer)" : ""
            let which = pass == .backward ? "the loss gradient (backward pass) of activation" : "activation"
            let fix = pass == .backward ? "; put it with pass NW_PASS_BACKWARD" : ""
            throw .missingInput("\(which) \(location.name)\(at) is not in the store\(fix)")
        }
        return view
    }
}

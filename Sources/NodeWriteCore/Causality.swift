import Synchronization

/// Causality as a fact of the model. A causal model's queries attend to keys up to themselves, so
/// its attn.qk_probs holds no probability above the diagonal (key > query): a pattern that does is
/// a layout mistake (a (heads, query, key) pattern read as (query, key, head)), query and key
/// swapped, or a model that is not causal, and is refused (`ActivationStore.ensureCausal`). A
/// causal model reads nothing at a key after the query (so a non-finite value there cannot reach
/// an earlier query); a model that is not causal reads every key.

/// Whether one attn.qk_probs store entry has probability above its diagonal: scanned the first
/// time a causal model reads the entry, then kept with it (a put makes a new entry, so a new scan).
/// Any number of threads may ask at once: each reads the published result, or scans (every scan of
/// the entry gives the same result) and publishes it with one atomic store.
package final class UpperTriangleScan: Sendable {
    /// `notScanned`, `clean`, or the element index (q · T_k + k) · n_heads + h of the first entry
    /// above the diagonal, in (query, key, head) order, that is not ±0 (NaN and ±inf count).
    private let state = Atomic<Int>(UpperTriangleScan.notScanned)
    static let notScanned = -2, clean = -1

    package init() {}

    /// The first (query, key, head) above the diagonal whose value is not ±0, or nil.
    func firstMass(_ p: TensorView) -> (q: Int, k: Int, h: Int)? {
        var found = state.load(ordering: .acquiring)
        if found == Self.notScanned {
            found = Self.scan(p)
            state.store(found, ordering: .releasing)
        }
        guard found >= 0 else { return nil }
        let keys = p.shape[1], heads = p.shape[2]
        return (found / (keys &* heads), found / heads % keys, found % heads)
    }

    /// One pass over the entries with k > q: per query one strided run over (key, head) when those
    /// are one stride apart (a contiguous float32 run goes through the SIMD kernel), else one run of
    /// heads per key. The entries are compared by their bits (±0 is zero; NaN is not).
    static func scan(_ p: TensorView) -> Int {
        let tokens = p.shape[0], keys = p.shape[1], heads = p.shape[2]
        guard let base = p.base, p.count > 0 else { return clean }
        let (s0, s1, s2) = (p.strides[0], p.strides[1], p.strides[2]), size = p.dtype.itemSize
        let oneRun = heads == 1 || s1 == heads &* s2, runStride = heads == 1 ? s1 : s2
        for q in 0..<max(0, min(tokens, keys &- 1)) {
            let first = q &+ 1, row = (q &* keys &+ first) &* heads
            if oneRun {
                let start = base + (q &* s0 &+ first &* s1) &* size
                if let i = Kernels.firstNonzero((keys &- first) &* heads, start, stride: runStride, itemSize: size) {
                    return row &+ i
                }
                continue
            }
            for k in first..<keys {
                let start = base + (q &* s0 &+ k &* s1) &* size
                if let h = Kernels.firstNonzero(heads, start, stride: s2, itemSize: size) {
                    return (q &* keys &+ k) &* heads &+ h
                }
            }
        }
        return clean
    }
}

extension ActivationStore {
    /// For a causal model: the store's attn.qk_probs at `layer` (`p`) must hold no probability above
    /// the diagonal. Scanned once per entry.
    /// - Throws: `.invalidArgument` naming the first such entry, the likely causes and the fixes.
    func ensureCausal(_ p: TensorView, layer: Int) throws(NodeWriteError) {
        let scan = upperTriangleScan(layer: layer) ?? UpperTriangleScan()
        guard let (q, k, h) = scan.firstMass(p) else { return }
        let offset = p.offset(q, k, h)
        let value = p.dtype == .float64
            ? "\(p.base.unsafelyUnwrapped.loadUnaligned(fromByteOffset: offset &* 8, as: Double.self))"
            : "\(p.value(at: offset))"
        throw .invalidArgument(
            "activation attn.qk_probs at layer \(layer): probability \(value) at (query \(q), key \(k), head \(h)) "
            + "lies above the diagonal (key > query), but the model is causal (each query attends only to keys up to "
            + "itself). Most likely a (heads, query, key) pattern was passed as (query, key, head) (Python: put it with "
            + "layout=\"hqk\"), or query and key are swapped; if the model is not causal, declare it with "
            + "nw_model_set_causal(model, 0) (Python: Model(..., causal=False))")
    }
}

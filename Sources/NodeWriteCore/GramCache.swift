#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Gram matrices G_h = W_O[h] W_O[h]ᵀ of one attn.to_residual weight (the attention write
/// norms need them on every call), kept with the weight and reused while its bytes are
/// unchanged: a copy the library owns never changes; a borrowed view is compared byte for byte
/// with a snapshot taken when the Grams were computed, since its owner may have written to it.
/// Snapshots of all caches together are limited to `snapshotLimit` bytes (one more copy of
/// each borrowed W_O in use: 2.4 MB per layer at GPT-2-small size). A view whose elements do not
/// tile one contiguous span, a snapshot over the limit, or a cache that cannot get memory
/// computes the Grams for the call only. Any number of threads may use one cache.
package final class GramCache: @unchecked Sendable {
    package static let snapshotLimit = 256 << 20
    private static let snapshotBytes = Budget(limit: snapshotLimit)
    private let mutex = Mutex()
    private var entry: Entry?

    /// Grams (heads × d_head × d_head, contiguous) and, for a borrowed weight, its bytes then.
    private final class Entry {
        let grams: UnsafeMutablePointer<Float>
        let snapshot: UnsafeMutableRawBufferPointer?

        init(grams: UnsafeMutablePointer<Float>, snapshot: UnsafeMutableRawBufferPointer?) {
            self.grams = grams
            self.snapshot = snapshot
        }

        deinit {
            free(grams)
            if let snapshot {
                free(snapshot.baseAddress)
                GramCache.snapshotBytes.give(snapshot.count)
            }
        }
    }

    /// Calls `body` with G_h at offset h · d_head² for every head of `h` (the float32 form of
    /// `weight`'s view), from the cache or computed now.
    func withGrams<R>(_ h: AttentionHeads.Float32, of weight: WeightStorage, threads: Int,
                      _ body: (UnsafePointer<Float>) throws(NodeWriteError) -> R) throws(NodeWriteError) -> R {
        let count = h.heads &* h.dHead &* h.dHead
        let span = weight.isCopy ? nil : weight.view.contiguousSpan
        if weight.isCopy || span != nil {
            if let hit = cached(span) {
                defer { withExtendedLifetime(hit) {} }
                return try body(hit.grams)
            }
            if let made = make(h, span, count: count, threads: threads) {
                store(made)
                defer { withExtendedLifetime(made) {} }
                return try body(made.grams)
            }
        }
        return try withScratch(Float.self, count: count, "Gram matrices") { (g) throws(NodeWriteError) -> R in
            compute(h, into: g, threads: threads)
            return try body(g)
        }
    }

    /// The entry, if there is one and (for a borrowed weight) its snapshot equals `span` now.
    private func cached(_ span: UnsafeRawBufferPointer?) -> Entry? {
        guard let e = mutex.locked({ entry }) else { return nil }
        guard let span else { return e }
        guard let snapshot = e.snapshot, snapshot.count == span.count, let a = snapshot.baseAddress,
              let b = span.baseAddress else { return nil }
        return memcmp(a, b, span.count) == 0 ? e : nil
    }

    private func store(_ e: Entry) { mutex.locked { entry = e } }

    /// A new entry: the span's bytes first (what the Grams will be computed from), then the Grams.
    private func make(_ h: AttentionHeads.Float32, _ span: UnsafeRawBufferPointer?, count: Int, threads: Int) -> Entry? {
        guard let grams = malloc(count &* MemoryLayout<Float>.stride)?.bindMemory(to: Float.self, capacity: count) else { return nil }
        var snapshot: UnsafeMutableRawBufferPointer? = nil
        if let span, let base = span.baseAddress {
            guard Self.snapshotBytes.take(span.count) else { free(grams); return nil }
            guard let copy = malloc(max(1, span.count)) else {
                Self.snapshotBytes.give(span.count)
                free(grams)
                return nil
            }
            memcpy(copy, base, span.count)
            snapshot = UnsafeMutableRawBufferPointer(start: copy, count: span.count)
        }
        compute(h, into: grams, threads: threads)
        return Entry(grams: grams, snapshot: snapshot)
    }

    private func compute(_ h: AttentionHeads.Float32, into g: UnsafeMutablePointer<Float>, threads: Int) {
        let size = h.dHead &* h.dHead
        parallelFor(h.heads, threads: threads) { head, _ in h.gram(head, into: g + head &* size) }
    }
}

extension TensorView {
    /// The bytes this view reads, when its elements tile them exactly (a contiguous layout, or
    /// a permutation of one, with non-negative strides); nil otherwise.
    var contiguousSpan: UnsafeRawBufferPointer? {
        guard let base, count > 0 else { return nil }
        var dims: [(stride: Int, size: Int)] = []
        for i in 0..<ndim where shape[i] > 1 { dims.append((strides[i], shape[i])) }
        dims.sort { $0.stride < $1.stride }
        var expected = 1
        for d in dims {
            guard d.stride == expected else { return nil }
            expected = d.stride &* d.size
        }
        return UnsafeRawBufferPointer(start: base, count: count &* dtype.itemSize)
    }
}

/// A pthread mutex at a stable address.
final class Mutex: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        m = .allocate(capacity: 1)
        pthread_mutex_init(m, nil)
    }

    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }

    func locked<R>(_ body: () -> R) -> R {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return body()
    }
}

/// A count of bytes shared by threads, never above `limit`.
final class Budget: @unchecked Sendable {
    private let mutex = Mutex()
    private let limit: Int
    private var used = 0

    init(limit: Int) { self.limit = limit }

    /// Whether `n` more bytes fit; if so they are counted.
    func take(_ n: Int) -> Bool {
        mutex.locked {
            guard n <= limit &- used else { return false }
            used &+= n
            return true
        }
    }

    func give(_ n: Int) { mutex.locked { used &-= n } }
}

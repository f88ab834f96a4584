/// Small helpers of the edge kernels: products through `Kernels` (fixed FMA chains, the same
/// bits on any thread count) and row-major index arithmetic.
@inline(__always)
func mat(_ p: UnsafePointer<Float>, _ rowStride: Int, _ columnStride: Int = 1) -> F32Matrix {
    F32Matrix(base: p, rowStride: rowStride, columnStride: columnStride)
}

@inline(__always)
func mat(_ p: UnsafeMutablePointer<Float>, _ rowStride: Int, _ columnStride: Int = 1) -> F32Matrix {
    F32Matrix(base: UnsafePointer(p), rowStride: rowStride, columnStride: columnStride)
}

/// C (m × n) = A (m × k) · B (k × n).
@inline(__always)
func product(_ m: Int, _ n: Int, _ k: Int, _ a: F32Matrix, _ b: F32Matrix, _ c: UnsafeMutablePointer<Float>,
             _ cRowStride: Int, threads: Int = 1) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        for i in 0..<m { (c + i &* cRowStride).update(repeating: 0, count: n) }
        return
    }
    Kernels.gemmInPlace(m: m, n: n, k: k, a: a, b: b, c: c, cRowStride: cRowStride, threads: threads)
}

/// Σ x[i] y[i] in float64, rounded once.
@inline(__always)
func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    Float(sum64(n) { Double(x[$0]) * Double(y[$0]) })
}

/// Σ term(i) for i < n in float64, in eight interleaved partial sums (i mod 8) added pairwise at
/// the end: a fixed order (the same bits on any thread count), and eight independent chains of
/// additions instead of one, which would wait on each addition's latency.
@inline(__always)
func sum64(_ n: Int, _ term: (Int) -> Double) -> Double {
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, s5 = 0.0, s6 = 0.0, s7 = 0.0
    var i = 0
    while i &+ 8 <= n {
        s0 += term(i); s1 += term(i &+ 1); s2 += term(i &+ 2); s3 += term(i &+ 3)
        s4 += term(i &+ 4); s5 += term(i &+ 5); s6 += term(i &+ 6); s7 += term(i &+ 7)
        i &+= 8
    }
    var tail = 0.0
    while i < n { tail += term(i); i &+= 1 }
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + tail
}

/// Zeros `count` floats, in parallel blocks for large outputs, written with non-temporal stores
/// from `Kernels.streamMinBytes` (final after one pass: their lines are not read first).
func fillZeros(_ out: UnsafeMutablePointer<Float>, _ count: Int, threads: Int) {
    guard count > 0 else { return }
    let block = 1 << 18
    let blocks = (count &+ block &- 1) / block
    let stream = count &* MemoryLayout<Float>.size >= Kernels.streamMinBytes
    if blocks <= 1 && !stream { out.update(repeating: 0, count: count); return }
    var none: Float = 0
    withUnsafePointer(to: &none) { dummy in
        parallelFor(blocks, threads: threads) { b, _ in
            let start = b &* block, n = min(block, count &- start)
            if stream { Kernels.scaleByStream(0, dummy, dummy, out + start, zeros: n) } else { (out + start).update(repeating: 0, count: n) }
        }
    }
}

/// Row q(q+1)/2 of the flattened (query, key <= query) layout.
@inline(__always)
func pairRow(_ q: Int) -> Int { q &* (q &+ 1) / 2 }

/// Per-head weight blocks of a (heads, d_model, d_head) weight: head h as (d_model × d_head), and
/// transposed (d_head × d_model).
struct HeadWeights {
    let base: UnsafePointer<Float>
    let dModel: Int, dHead: Int
    @inline(__always) func head(_ h: Int) -> F32Matrix { mat(base + h &* dModel &* dHead, dHead) }
    @inline(__always) func headT(_ h: Int) -> F32Matrix { mat(base + h &* dModel &* dHead, 1, dHead) }
}

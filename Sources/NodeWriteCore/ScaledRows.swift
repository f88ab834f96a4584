/// The last step of every write-family quantity: a node's scalar activation times a factor,
/// row by row (vectorised for contiguous float32 activations).

/// out[i] = s(i) · f[i] for i < n, where s(i) is element offset + i · stride of `scalars`;
/// 0 where f[i] is 0 (a factor that is exactly zero, such as an inactive latent's or a
/// zero gradient row's, gives an exact zero).
@inline(__always)
func scaleRow(_ out: UnsafeMutablePointer<Float>, _ n: Int, _ scalars: TensorView, offset: Int, stride: Int,
              _ f: UnsafePointer<Float>) {
    if scalars.dtype == .float32 && stride == 1 {
        Kernels.scaleBy(n, scalars.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self) + offset, f, out)
    } else {
        for i in 0..<n { let x = f[i]; out[i] = x == 0 ? 0 : scalars.value(at: offset &+ i &* stride) * x }
    }
}

/// Σ_i s(i) · f[i] into `sums[i % width]` for i < n (n a multiple of width), the terms of each
/// sum in i order (an FMA chain per sum).
@inline(__always)
func accumulateRow(_ sums: UnsafeMutablePointer<Float>, width: Int, _ n: Int, _ scalars: TensorView, offset: Int,
                   stride: Int, _ f: UnsafePointer<Float>) {
    var i = 0
    if scalars.dtype == .float32 && stride == 1 {
        let s = scalars.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self) + offset
        while i < n {
            for j in 0..<width { sums[j] = sums[j].addingProduct(s[i &+ j], f[i &+ j]) }
            i &+= width
        }
        return
    }
    while i < n {
        for j in 0..<width { sums[j] = sums[j].addingProduct(scalars.value(at: offset &+ (i &+ j) &* stride), f[i &+ j]) }
        i &+= width
    }
}

extension DerivedScalarRun {
    /// Attention row q, keys 0 ..< keys: out[k · heads + h] = p[q, k, h] · f[k · heads + h].
    @inline(__always)
    func scalePairRow(_ out: UnsafeMutablePointer<Float>, _ p: TensorView, q: Int, keys: Int, heads: Int, _ f: UnsafePointer<Float>) {
        let (s0, s1, s2) = (p.strides[0], p.strides[1], p.strides[2])
        if s1 == heads &* s2 {
            scaleRow(out, keys &* heads, p, offset: q &* s0, stride: s2, f)
        } else {
            for k in 0..<keys { scaleRow(out + k &* heads, heads, p, offset: q &* s0 &+ k &* s1, stride: s2, f + k &* heads) }
        }
    }

    /// Attention row q: sums[h] = Σ_{k < keys} p[q, k, h] · f[k · heads + h].
    @inline(__always)
    func sumPairRow(_ sums: UnsafeMutablePointer<Float>, _ p: TensorView, q: Int, keys: Int, heads: Int, _ f: UnsafePointer<Float>) {
        let (s0, s1, s2) = (p.strides[0], p.strides[1], p.strides[2])
        sums.update(repeating: 0, count: heads)
        if s1 == heads &* s2 {
            accumulateRow(sums, width: heads, keys &* heads, p, offset: q &* s0, stride: s2, f)
            return
        }
        for k in 0..<keys {
            accumulateRow(sums, width: heads, heads, p, offset: q &* s0 &+ k &* s1, stride: s2, f + k &* heads)
        }
    }
}

extension TensorView {
    /// p (T, T, heads) as float32 rows whose (key, head) elements are contiguous: row q starts at
    /// base + q · stride; nil for other dtypes and layouts.
    func float32Rows(heads: Int) -> (base: UnsafePointer<Float>, stride: Int)? {
        guard dtype == .float32, let base, strides[2] == 1 || heads == 1, strides[1] == heads || shape[1] == 1 else { return nil }
        return (base.assumingMemoryBound(to: Float.self), strides[0])
    }
}

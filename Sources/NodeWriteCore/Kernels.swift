/// The arithmetic of a node write: scaled rows of a weight view added into a
/// float32 vector, in float32, specialised per element type.

/// out[d] += a * view[offset + d * stride] for d in 0..<n.
@inline(__always)
func addScaledRow(_ out: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float,
                  _ view: TensorView, offset: Int, stride: Int) {
    let base = view.base.unsafelyUnwrapped
    switch view.dtype {
    case .float32:
        if stride == 1 {
            addScaledContiguous(out, n, a, base + offset &* 4)
        } else {
            addScaledRow(out, n, a, base, offset, stride, F32Loader.self)
        }
    case .float16: addScaledRow(out, n, a, base, offset, stride, F16Loader.self)
    case .bfloat16: addScaledRow(out, n, a, base, offset, stride, BF16Loader.self)
    case .float64: addScaledRow(out, n, a, base, offset, stride, F64Loader.self)
    }
}

@inline(__always)
private func addScaledRow<L: ElementLoader>(_ out: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float,
                                            _ base: UnsafeRawPointer, _ offset: Int, _ stride: Int, _: L.Type) {
    var e = offset
    for d in 0..<n {
        out[d] += a * L.load(base, e)
        e &+= stride
    }
}

/// The fast path: a contiguous float32 row, vectorised by the compiler.
@inline(__always)
private func addScaledContiguous(_ out: UnsafeMutablePointer<Float>, _ n: Int, _ a: Float, _ row: UnsafeRawPointer) {
    for d in 0..<n {
        out[d] += a * row.loadUnaligned(fromByteOffset: d &* 4, as: Float.self)
    }
}

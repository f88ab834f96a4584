/// The arithmetic of a node write: a weighted sum of rows of a weight view added into a
/// float32 vector, in float32, specialised per element type and memory layout. Every
/// layout adds the terms of each output element in the same order (row 0, 1, ...), so
/// all layouts give the same bits.

/// out[d] += Σ_r x(r) · W[offset + r·rowStride + d·columnStride] for d in 0..<n, r in 0..<rows.
@inline(__always)
func addWeightedRows(_ out: UnsafeMutablePointer<Float>, _ n: Int, rows: Int, _ w: TensorView,
                     offset: Int, rowStride: Int, columnStride: Int, x: (Int) -> Float) {
    if w.dtype == .float32 && columnStride == 1 && rows > 1 {
        addWeightedRowsContiguous(out, n, rows: rows, w.base.unsafelyUnwrapped + offset &* 4, rowStride, x)
    } else if w.dtype == .float32 && rowStride == 1 && rows > 1 {
        addWeightedColumns(out, n, rows: rows, w.base.unsafelyUnwrapped + offset &* 4, columnStride, x)
    } else {
        for r in 0..<rows {
            addScaledRow(out, n, x(r), w, offset: offset &+ r &* rowStride, stride: columnStride)
        }
    }
}

/// Contiguous float32 rows, eight per pass over the output: each output element is
/// loaded once, gets its eight terms in row order, and is stored once (vectorised over d).
@inline(__always)
private func addWeightedRowsContiguous(_ out: UnsafeMutablePointer<Float>, _ n: Int, rows: Int,
                                       _ base: UnsafeRawPointer, _ rowStride: Int, _ x: (Int) -> Float) {
    @inline(__always) func row(_ r: Int) -> UnsafeRawPointer { base + r &* rowStride &* 4 }
    var r = 0
    while r &+ 8 <= rows {
        let (x0, x1, x2, x3, x4, x5, x6, x7) = (x(r), x(r &+ 1), x(r &+ 2), x(r &+ 3),
                                                x(r &+ 4), x(r &+ 5), x(r &+ 6), x(r &+ 7))
        let (p0, p1, p2, p3, p4, p5, p6, p7) = (row(r), row(r &+ 1), row(r &+ 2), row(r &+ 3),
                                                row(r &+ 4), row(r &+ 5), row(r &+ 6), row(r &+ 7))
        for d in 0..<n {
            let o = d &* 4
            var a = out[d]
            a += x0 * p0.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x1 * p1.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x2 * p2.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x3 * p3.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x4 * p4.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x5 * p5.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x6 * p6.loadUnaligned(fromByteOffset: o, as: Float.self)
            a += x7 * p7.loadUnaligned(fromByteOffset: o, as: Float.self)
            out[d] = a
        }
        r &+= 8
    }
    while r < rows {
        addScaledContiguous(out, n, x(r), row(r))
        r &+= 1
    }
}

/// The transposed float32 layout (rows contiguous within a column, as in TDB's permuted
/// weight views): per chunk of up to 64 rows staged on the stack, each column is a dot
/// product, eight columns at a time (eight independent sums).
@inline(__always)
private func addWeightedColumns(_ out: UnsafeMutablePointer<Float>, _ n: Int, rows: Int,
                                _ base: UnsafeRawPointer, _ columnStride: Int, _ x: (Int) -> Float) {
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { chunk in
        let xs = chunk.baseAddress.unsafelyUnwrapped
        var r0 = 0
        while r0 < rows {
            let m = min(64, rows &- r0)
            for j in 0..<m { xs[j] = x(r0 &+ j) }
            let rows0 = base + r0 &* 4
            @inline(__always) func w(_ d: Int, _ j: Int) -> Float {
                rows0.loadUnaligned(fromByteOffset: (d &* columnStride &+ j) &* 4, as: Float.self)
            }
            var d = 0
            while d &+ 8 <= n {
                var a0 = out[d], a1 = out[d &+ 1], a2 = out[d &+ 2], a3 = out[d &+ 3]
                var a4 = out[d &+ 4], a5 = out[d &+ 5], a6 = out[d &+ 6], a7 = out[d &+ 7]
                for j in 0..<m {
                    let xj = xs[j]
                    a0 += xj * w(d, j)
                    a1 += xj * w(d &+ 1, j)
                    a2 += xj * w(d &+ 2, j)
                    a3 += xj * w(d &+ 3, j)
                    a4 += xj * w(d &+ 4, j)
                    a5 += xj * w(d &+ 5, j)
                    a6 += xj * w(d &+ 6, j)
                    a7 += xj * w(d &+ 7, j)
                }
                out[d] = a0; out[d &+ 1] = a1; out[d &+ 2] = a2; out[d &+ 3] = a3
                out[d &+ 4] = a4; out[d &+ 5] = a5; out[d &+ 6] = a6; out[d &+ 7] = a7
                d &+= 8
            }
            while d < n {
                var a = out[d]
                for j in 0..<m { a += xs[j] * w(d, j) }
                out[d] = a
                d &+= 1
            }
            r0 &+= 64
        }
    }
}

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

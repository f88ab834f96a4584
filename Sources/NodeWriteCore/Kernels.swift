/// The arithmetic of node writes. Every output element is the float32 fused-multiply-add
/// chain `acc = 0; for k in 0..<K { acc = fma(a[i, k], b[k, j], acc) }`, in k order: every
/// layout, blocking, SIMD path and thread count gives the same bits.
package enum Kernels {
    /// C (m × n, row stride cRowStride) = A (m × k) · B (k × n).
    package static func gemm(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                             c: UnsafeMutablePointer<Float>, cRowStride: Int, threads: Int = 1) throws(NodeWriteError) {
        for i in 0..<m {
            let out = c + i &* cRowStride
            for j in 0..<n { out[j] = 0 }
            for r in 0..<k {
                let x = a.base[i &* a.rowStride &+ r &* a.columnStride]
                let row = b.base + r &* b.rowStride
                for j in 0..<n { out[j] = out[j].addingProduct(x, row[j &* b.columnStride]) }
            }
        }
    }

    /// `gemm` without scratch memory (for work inside parallel tasks): never fails.
    package static func gemmInPlace(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                                    c: UnsafeMutablePointer<Float>, cRowStride: Int) {
        try! gemm(m: m, n: n, k: k, a: a, b: b, c: c, cRowStride: cRowStride)
    }

    /// C[i, :] = s[i] · B[row[i], :] for i < m (the one-term chain).
    package static func scaledRows(m: Int, n: Int, scales: UnsafePointer<Float>, rows: UnsafePointer<Int>,
                                   b: F32Matrix, c: UnsafeMutablePointer<Float>, cRowStride: Int,
                                   threads: Int = 1) throws(NodeWriteError) {
        for i in 0..<m {
            let out = c + i &* cRowStride, x = scales[i], row = b.base + rows[i] &* b.rowStride
            for j in 0..<n { out[j] = Float(0).addingProduct(x, row[j &* b.columnStride]) }
        }
    }

    /// The number of threads node sets and layer-wide quantities use.
    package static var threads: Int { 1 }

    /// Sets it (0: the default).
    package static func setThreads(_ n: Int) {}
}

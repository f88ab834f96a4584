import _NodeWriteKernels

/// The arithmetic of node writes, in `_NodeWriteKernels` (AVX-512 / AVX2 / scalar, chosen at
/// run time). Every output element is the float32 fused-multiply-add chain
/// `acc = 0; for k in 0..<K { acc = fma(a[i, k], b[k, j], acc) }`, in k order: every layout,
/// blocking, SIMD path and thread count gives the same bits.
package enum Kernels {
    /// C (m × n, row stride cRowStride) = A (m × k) · B (k × n).
    /// - Throws: `.outOfMemory` when the kernel's scratch memory cannot be had (C untouched).
    package static func gemm(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                             c: UnsafeMutablePointer<Float>, cRowStride: Int, threads: Int = 1) throws(NodeWriteError) {
        let status = nwk_gemm(Int64(m), Int64(n), Int64(k), a.base, Int64(a.rowStride), Int64(a.columnStride),
                              b.base, Int64(b.rowStride), Int64(b.columnStride), c, Int64(cRowStride), Int32(clamping: threads))
        guard status == 0 else { throw .outOfMemory("cannot allocate the scratch memory of a \(m) × \(k) × \(n) product") }
    }

    /// `gemm` that never fails (for work inside parallel tasks, which cannot throw): when the
    /// kernel cannot get scratch memory, the same FMA chains run here, unblocked (same bits).
    package static func gemmInPlace(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                                    c: UnsafeMutablePointer<Float>, cRowStride: Int, threads: Int = 1) {
        if (try? gemm(m: m, n: n, k: k, a: a, b: b, c: c, cRowStride: cRowStride, threads: threads)) != nil { return }
        for i in 0..<m {
            let out = c + i &* cRowStride, row = a.row(i)
            for j in 0..<n {
                var acc: Float = 0
                for r in 0..<k { acc = acc.addingProduct(row.base[r &* row.columnStride], b.base[r &* b.rowStride &+ j &* b.columnStride]) }
                out[j] = acc
            }
        }
    }

    /// C[i, :] = s[i] · B[row[i], :] for i < m (the one-term chain).
    package static func scaledRows(m: Int, n: Int, scales: UnsafePointer<Float>, rows: UnsafePointer<Int>,
                                   b: F32Matrix, c: UnsafeMutablePointer<Float>, cRowStride: Int,
                                   threads: Int = 1) {
        rows.withMemoryRebound(to: Int64.self, capacity: m) { rows in
            _ = nwk_scaled_rows(Int64(m), Int64(n), scales, rows, b.base, Int64(b.rowStride), Int64(b.columnStride),
                                c, Int64(cRowStride), Int32(clamping: threads))
        }
    }

    /// The number of threads node sets and layer-wide quantities use (always >= 1).
    package static var threads: Int { Int(nwk_threads()) }

    /// Sets it; 0 restores the default (NODEWRITE_NUM_THREADS, else the CPUs this process may use).
    package static func setThreads(_ n: Int) { nwk_set_threads(Int32(n)) }

    /// The SIMD path in use ("avx512", "avx2" or "scalar").
    package static var path: String { String(cString: nwk_path()) }
}

import _NodeWriteKernels

/// The arithmetic of node writes, in `_NodeWriteKernels` (AVX-512 / AVX2 / scalar, chosen at
/// run time). Every output element is the float32 fused-multiply-add chain
/// `acc = 0; for k in 0..<K { acc = fma(a[i, k], b[k, j], acc) }`, in k order: every layout,
/// blocking, SIMD path and thread count gives the same bits.
package enum Kernels {
    /// C (m × n, row stride cRowStride) = A (m × k) · B (k × n).
    /// - Throws: `.outOfMemory` when the kernel's scratch memory cannot be had (C untouched).
    /// With `scales` (S[i, j] = scales[i · scalesRowStride + j]), each element becomes
    /// chain == 0 ? 0 : S[i, j] · chain, applied per tile in cache (no second pass over C).
    /// `outputBytes`: when C is one part of a larger output written by the same call (one head's
    /// rows of a node set), that output's size, which decides the store policy (`streamMinBytes`);
    /// nil: C's own m · n · 4.
    package static func gemm(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                             scales: UnsafePointer<Float>? = nil, scalesRowStride: Int = 0,
                             c: UnsafeMutablePointer<Float>, cRowStride: Int, threads: Int = 1,
                             outputBytes: Int? = nil) throws(NodeWriteError) {
        let bytes = outputBytes ?? m.multipliedReportingOverflow(by: n &* MemoryLayout<Float>.size).partialValue
        let status = nwk_gemm_scaled_part(Int64(m), Int64(n), Int64(k), a.base, Int64(a.rowStride), Int64(a.columnStride),
                                          b.base, Int64(b.rowStride), Int64(b.columnStride), scales, Int64(scalesRowStride),
                                          c, Int64(cRowStride), Int32(clamping: threads), Int64(bytes))
        guard status == 0 else { throw .outOfMemory("cannot allocate the scratch memory of a \(m) × \(k) × \(n) product") }
    }

    /// `gemm` that never fails (for work inside parallel tasks, which cannot throw): when the
    /// kernel cannot get scratch memory, the same FMA chains run here, unblocked (same bits).
    package static func gemmInPlace(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                                    c: UnsafeMutablePointer<Float>, cRowStride: Int, threads: Int = 1,
                                    outputBytes: Int? = nil) {
        if (try? gemm(m: m, n: n, k: k, a: a, b: b, c: c, cRowStride: cRowStride, threads: threads,
                      outputBytes: outputBytes)) != nil { return }
        for i in 0..<m {
            let out = c + i &* cRowStride, row = a.row(i)
            for j in 0..<n {
                var acc: Float = 0
                for r in 0..<k { acc = acc.addingProduct(row.base[r &* row.columnStride], b.base[r &* b.rowStride &+ j &* b.columnStride]) }
                out[j] = acc
            }
        }
    }

    /// C (m × n) continues each element's chain over k more steps: C = fma(A(i, r), B(r, j), C) for
    /// r < k in order (never fails: a few rows, short k, no scratch; on the calling thread).
    package static func gemmContinue(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix,
                                     c: UnsafeMutablePointer<Float>, cRowStride: Int) {
        nwk_gemm_continue(Int64(m), Int64(n), Int64(k), a.base, Int64(a.rowStride), Int64(a.columnStride),
                          b.base, Int64(b.rowStride), Int64(b.columnStride), c, Int64(cRowStride))
    }

    /// The first i < n whose element at `base` + i · stride (in items of `itemSize` bytes: 2, 4 or 8) is
    /// not ±0 (NaN and infinities count), or nil.
    package static func firstNonzero(_ n: Int, _ base: UnsafeRawPointer, stride: Int, itemSize: Int) -> Int? {
        let i = nwk_first_nonzero(Int64(n), base, Int64(stride), Int32(itemSize))
        return i < 0 ? nil : Int(i)
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

    /// c[i] = f[i] == 0 ? 0 : s[i] · f[i] for i < n (c may be f).
    @inline(__always)
    package static func scaleBy(_ n: Int, _ s: UnsafePointer<Float>, _ f: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        nwk_scale_by(Int64(n), s, f, c)
    }

    /// Products of at most this many rows take no scratch memory: `gemm` cannot fail for them.
    package static let scratchlessRows = Int(NWK_SMALL_M)

    /// Outputs from this size (bytes) are written with non-temporal stores where final after one
    /// pass; smaller ones stay in cache for the caller's next read (see NWK_STREAM_MIN_BYTES).
    package static let streamMinBytes = Int(NWK_STREAM_MIN_BYTES)

    /// One row of a large output: `scaleBy` for i < n, then `zeros` zeros, with non-temporal
    /// stores where the CPU has them (same values; the lines are not read first).
    @inline(__always)
    package static func scaleByStream(_ n: Int, _ s: UnsafePointer<Float>, _ f: UnsafePointer<Float>,
                                      _ c: UnsafeMutablePointer<Float>, zeros: Int) {
        nwk_scale_by_stream(Int64(n), s, f, c, Int64(zeros))
    }

    /// How `attentionPairs` writes: TDB's (key, head) rows, or their sums over keys per head.
    package enum PairOutput { case pairs(tailKeys: Int), sums }

    /// Where the pair kernel reads p: float32 rows in place (row stride, (key, head) contiguous),
    /// or a reader that fills chunks of row q: `read(context, q, k0, nk, dst)`.
    package enum PairProbs {
        case inPlace(UnsafePointer<Float>, rowStride: Int)
        case reader(@convention(c) (UnsafeRawPointer?, Int64, Int64, Int64, UnsafeMutablePointer<Float>?) -> Void, UnsafeRawPointer)
    }

    /// Whether any of x[0..<n] is not ±0 (NaN counts).
    @inline(__always)
    package static func anyNonzero(_ n: Int, _ x: UnsafePointer<Float>) -> Bool { nwk_any_nonzero(Int64(n), x) != 0 }

    /// out[i · outStride] = ‖x_i @ B‖ = sqrt(x_i · y_i) for i < rows, when y_i = x_i (B Bᵀ): rows
    /// of x and y with any strides (fast when both are row-contiguous, or when y is stored by
    /// columns, `y.rowStride == 1`), summed in float64; a sum ≤ 0 gives +0, NaN gives NaN.
    package static func quadNorms(rows: Int, n: Int, x: F32Matrix, y: F32Matrix, out: UnsafeMutablePointer<Float>, outStride: Int) {
        let xs: (Int64, Int64) = (Int64(x.rowStride), Int64(x.columnStride))
        let ys: (Int64, Int64) = (Int64(y.rowStride), Int64(y.columnStride))
        nwk_quad_norms(Int64(rows), Int64(n), x.base, xs.0, xs.1, y.base, ys.0, ys.1, out, Int64(outStride))
    }

    /// Attention pair products (see nwk_attention_pairs in nw_kernels.h): for query q with
    /// rowOf[q] >= 0, f(q, k, h) = U[rowOf[q], h] · v[k, h] for k ≤ q (every k with `allKeys`: a
    /// model that is not causal), times p, at out + offsets[q].
    /// - Throws: `.outOfMemory` when the kernel's scratch memory cannot be had (out untouched).
    static func attentionPairs(tokens: Int, heads: Int, dHead: Int, u: UnsafePointer<Float>, uRowStride: Int,
                                       rowOf: UnsafePointer<Int64>, v: F32Tensor3, probs: PairProbs,
                                       output: PairOutput, out: UnsafeMutablePointer<Float>, offsets: UnsafePointer<Int64>,
                                       zeroed: Bool, allKeys: Bool = false, threads: Int) throws(NodeWriteError) {
        var args = nwk_attention_pairs_args()
        (args.tokens, args.heads, args.d_head) = (Int64(tokens), Int32(heads), Int64(dHead))
        (args.u, args.u_rs, args.row) = (u, Int64(uRowStride), rowOf)
        (args.v, args.v_s0, args.v_s1, args.v_s2) = (v.base, Int64(v.strides.0), Int64(v.strides.1), Int64(v.strides.2))
        switch probs {
        case .inPlace(let p, let rowStride): (args.p, args.p_rs) = (p, Int64(rowStride))
        case .reader(let read, let context): (args.p_rows, args.p_ctx) = (read, context)
        }
        switch output {
        case .pairs(let tailKeys): (args.mode, args.tail_keys) = (Int32(NWK_PAIRS), Int64(tailKeys))
        case .sums: args.mode = Int32(NWK_PAIR_SUMS)
        }
        (args.out, args.off, args.zeroed, args.all_keys) = (out, offsets, zeroed ? 1 : 0, allKeys ? 1 : 0)
        guard nwk_attention_pairs(&args, Int32(clamping: threads)) == 0 else {
            throw .outOfMemory("cannot allocate the scratch memory of the attention pair products")
        }
    }

    /// The next task of a counter shared by threads: its value, then incremented atomically.
    package static func nextTask(_ counter: UnsafeMutablePointer<Int64>) -> Int { Int(nwk_next_task(counter)) }

    /// The number of threads node sets and layer-wide quantities use (always >= 1).
    package static var threads: Int { Int(nwk_threads()) }

    /// Sets it; 0 restores the default (NODEWRITE_NUM_THREADS, else the CPUs this process may use).
    package static func setThreads(_ n: Int) { nwk_set_threads(Int32(n)) }
}

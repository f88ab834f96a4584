/// The attention members of the write family: for head h, the write of (q, k, h) is
/// p[q, k, h] · v[k, h] @ W_O[h]. For a causal model only k ≤ q is computed (and read), and k > q
/// is exactly 0; for a model that is not causal every key is.
extension DerivedScalarRun {
    /// Query rows per parallel task.
    static let queryBlock = 64

    func attention(_ form: LayerForm, _ weight: WeightStorage, _ layout: DerivedScalarSpec.AttentionLayout,
                   _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        guard let values = form.values else { throw .missingInput("activation attn.v at layer \(form.source.layer) is not in the store") }
        let heads = AttentionHeads(form: form, weight: weight.view, values: values)
        try heads.withFloat32 { (h) throws(NodeWriteError) in
            if layout == .perSequenceToken, let mixedValues {
                return try mixedValuesPerSequenceToken(h, mixedValues, weight, out)
            }
            guard let direction else {
                return try weight.grams.withGrams(h, of: weight, threads: threads) { (grams) throws(NodeWriteError) in
                    if layout == .perSequenceToken { return try perSequenceNorms(h, grams, out) }
                    try withKeyFactors(h, { (f) throws(NodeWriteError) in try h.keyNorms(grams, into: f, threads: threads) }) { f in
                        writePairs(h, layout, out) { _ in UnsafePointer(f) }
                    }
                }
            }
            try direction.withRows { (rowTokens, g) throws(NodeWriteError) in
                if direction.shared {
                    try withKeyFactors(h, { (f) throws(NodeWriteError) in
                        if rowTokens.isEmpty { f.update(repeating: 0, count: h.tokens &* h.heads) } else { try h.keyProjections(g, into: f, threads: threads) }
                    }) { f in
                        if layout == .perSequenceToken {
                            parallelFor(h.tokens, threads: threads) { q, _ in
                                sumPairRow(out + q &* h.heads, h.probs, q: q, keys: h.keys(q), heads: h.heads, f)
                            }
                        } else {
                            writePairs(h, layout, out) { _ in UnsafePointer(f) }
                        }
                    }
                } else {
                    try perTokenProjections(h, layout, rowTokens, g, out)
                }
            }
        }
    }

    /// Per-(key, head) factors f[k · heads + h], computed by `fill`, then used by `body`.
    private func withKeyFactors(_ h: AttentionHeads.Float32, _ fill: (UnsafeMutablePointer<Float>) throws(NodeWriteError) -> Void,
                                _ body: (UnsafeMutablePointer<Float>) -> Void) throws(NodeWriteError) {
        try withScratch(Float.self, count: h.tokens &* h.heads, "per-key factors") { (f) throws(NodeWriteError) in
            try fill(f)
            body(f)
        }
    }

    /// out[q, k, h] = p[q, k, h] · factors(q)[k · heads + h] for the keys q reads, in TDB's
    /// unflattened or flattened layout (and 0 for the others when unflattened). Large outputs
    /// (`Kernels.streamMinBytes`) read float32 p rows in place and go out with non-temporal
    /// stores (TDB's (T, T, heads) at T = 1024 is 50 MB: its lines are then not read first).
    private func writePairs(_ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout,
                            _ out: UnsafeMutablePointer<Float>, _ factors: (Int) -> UnsafePointer<Float>) {
        let tokens = h.tokens, heads = h.heads
        let rows = count &* MemoryLayout<Float>.size >= Kernels.streamMinBytes ? h.probs.float32Rows(heads: heads) : nil
        parallelFor(tokens, threads: threads) { q, _ in
            let row = out + rowStart(q, tokens, heads, layout), zeros = tailZeros(q, h, layout), keys = h.keys(q)
            if let rows {
                Kernels.scaleByStream(keys &* heads, rows.base + q &* rows.stride, factors(q), row, zeros: zeros)
            } else {
                scalePairRow(row, h.probs, q: q, keys: keys, heads: heads, factors(q))
                (row + keys &* heads).update(repeating: 0, count: zeros)
            }
        }
    }

    /// The zeros row q must write after the keys it reads: the k > q part of an unflattened row of
    /// a causal model, unless the output holds zeros already.
    @inline(__always)
    private func tailZeros(_ q: Int, _ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout) -> Int {
        layout == .unflattened && !outputZeroed ? (h.tokens &- h.keys(q)) &* h.heads : 0
    }

    /// ‖Σ_k p[q, k, h] v[k, h] @ W_O[h]‖ (TDB: the norm of the head's summed write), from
    /// the weighted sum of values and the head's Gram matrix (`grams`, d_head² floats per head).
    private func perSequenceNorms(_ h: AttentionHeads.Float32, _ grams: UnsafePointer<Float>,
                                  _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let tokens = h.tokens, heads = h.heads, dHead = h.dHead
        let lanes = laneCount(heads, threads: threads)
        let perLane = 2 &* tokens &* dHead &+ Self.queryBlock &* tokens
        try withScratch(Float.self, count: lanes &* perLane, "weighted values") { (scratch) throws(NodeWriteError) in
            parallelFor(heads, threads: threads) { head, lane in
                let gram = grams + head &* dHead &* dHead, sums = scratch + lane &* perLane
                let y = sums + tokens &* dHead, masked = y + tokens &* dHead
                h.weightedValues(head, rows: 0..<tokens, masked: masked, into: sums)
                gemm(m: tokens, n: dHead, k: dHead, a: F32Matrix(base: sums, rowStride: dHead, columnStride: 1),
                     b: F32Matrix(base: gram, rowStride: dHead, columnStride: 1), c: y, cRowStride: dHead)
                Kernels.quadNorms(rows: tokens, n: dHead, x: F32Matrix(base: sums, rowStride: dHead, columnStride: 1),
                                  y: F32Matrix(base: y, rowStride: dHead, columnStride: 1), out: out + head, outStride: heads)
            }
        }
    }

    /// Projections onto per-token rows of g: U = g_Z @ W_O[h]ᵀ for all heads in one product,
    /// then the pair products v[k] · U[q] times p for the keys q reads (or their sums), blocked in
    /// the kernel; rows of g that are zero give rows of exact zeros.
    private func perTokenProjections(_ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout,
                                     _ rowTokens: UnsafeBufferPointer<Int>, _ g: F32Matrix,
                                     _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let tokens = h.tokens, heads = h.heads, dHead = h.dHead
        let used = rowTokens.count, uRow = heads &* dHead
        try withScratch(Float.self, count: max(1, used) &* uRow, "projected directions") { (u) throws(NodeWriteError) in
            if used > 0, let all = h.headRows {
                try Kernels.gemm(m: used, n: uRow, k: h.dModel, a: g, b: all.transposed, c: u, cRowStride: uRow, threads: threads)
            } else {
                for head in 0..<heads where used > 0 {
                    try Kernels.gemm(m: used, n: dHead, k: h.dModel, a: g, b: h.weight(head).transposed, c: u + head &* dHead,
                                     cRowStride: uRow, threads: threads)
                }
            }
            try withScratch(Int64.self, count: 2 &* tokens, "projection rows") { (rows) throws(NodeWriteError) in
                let rowOf = rows, offsets = rows + tokens
                for t in 0..<tokens {
                    rowOf[t] = -1
                    offsets[t] = Int64(layout == .perSequenceToken ? t &* heads : rowStart(t, tokens, heads, layout))
                }
                for (z, t) in rowTokens.enumerated() { rowOf[t] = Int64(z) }
                let p = h.probs
                var reader = PairRowReader(probs: p, heads: heads)
                try withUnsafePointer(to: &reader) { (reader) throws(NodeWriteError) in
                    let probs: Kernels.PairProbs = p.dtype == .float32 && p.strides[2] == 1 && p.strides[1] == heads
                        ? .inPlace(p.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self), rowStride: p.strides[0])
                        : .reader(PairRowReader.read, UnsafeRawPointer(reader))
                    try Kernels.attentionPairs(tokens: tokens, heads: heads, dHead: dHead, u: u, uRowStride: uRow,
                                               rowOf: rowOf, v: h.v, probs: probs,
                                               output: layout == .perSequenceToken ? .sums : .pairs(tailKeys: layout == .unflattened ? tokens : 0),
                                               out: out, offsets: offsets, zeroed: outputZeroed, allKeys: !h.causal,
                                               threads: threads)
                }
            }
        }
    }
}

/// Reads chunks of p's query rows as float32 for the pair kernel, for any dtype and strides.
private struct PairRowReader {
    let probs: TensorView
    let heads: Int

    static let read: @convention(c) (UnsafeRawPointer?, Int64, Int64, Int64, UnsafeMutablePointer<Float>?) -> Void = {
        context, q, k0, nk, dst in
        let reader = context.unsafelyUnwrapped.assumingMemoryBound(to: PairRowReader.self).pointee
        let p = reader.probs, heads = reader.heads, dst = dst.unsafelyUnwrapped
        for k in 0..<Int(nk) {
            for h in 0..<heads { dst[k &* heads &+ h] = p.value(at: p.offset(Int(q), Int(k0) &+ k, h)) }
        }
    }
}

/// Where query q's (key, head) values start in TDB's unflattened or flattened layout.
@inline(__always)
func rowStart(_ q: Int, _ tokens: Int, _ heads: Int, _ layout: DerivedScalarSpec.AttentionLayout) -> Int {
    layout == .flattened ? (q &* (q &+ 1) / 2) &* heads : q &* tokens &* heads
}

/// The non-throwing product for work inside parallel tasks (scratch is never needed when
/// both operands are float32 and m is small).
@inline(__always)
func gemm(m: Int, n: Int, k: Int, a: F32Matrix, b: F32Matrix, c: UnsafeMutablePointer<Float>, cRowStride: Int) {
    Kernels.gemmInPlace(m: m, n: n, k: k, a: a, b: b, c: c, cRowStride: cRowStride)
}

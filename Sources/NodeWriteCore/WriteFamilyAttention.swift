/// The attention members of the write family: for head h, the write of (q, k, h) is
/// p[q, k, h] · v[k, h] @ W_O[h]; only k ≤ q is computed, and k > q is exactly 0.
extension DerivedScalarRun {
    /// Query rows per parallel task.
    static let queryBlock = 64

    func attention(_ form: LayerForm, _ weight: TensorView, _ layout: DerivedScalarSpec.AttentionLayout,
                   _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        guard let values = form.values else { throw .missingInput("activation attn.v at layer \(form.source.layer) is not in the store") }
        let heads = AttentionHeads(form: form, weight: weight, values: values)
        try heads.withFloat32 { (h) throws(NodeWriteError) in
            guard let direction else {
                if layout == .perSequenceToken { return try perSequenceNorms(h, out) }
                return try withKeyFactors(h, { (f) throws(NodeWriteError) in try h.keyNorms(into: f, threads: threads) }) { f in
                    writePairs(h, layout, out) { _ in UnsafePointer(f) }
                }
            }
            try direction.withRows { (rowTokens, g) throws(NodeWriteError) in
                if direction.shared {
                    try withKeyFactors(h, { (f) throws(NodeWriteError) in
                        if rowTokens.isEmpty { f.update(repeating: 0, count: h.tokens &* h.heads) } else { try h.keyProjections(g, into: f, threads: threads) }
                    }) { f in
                        if layout == .perSequenceToken {
                            parallelFor(h.tokens, threads: threads) { q, _ in sumPairRow(out + q &* h.heads, h.probs, q: q, heads: h.heads, f) }
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

    /// out[q, k, h] = p[q, k, h] · factors(q)[k · heads + h] for k ≤ q, in TDB's unflattened
    /// or flattened layout (and 0 for k > q when unflattened).
    private func writePairs(_ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout,
                            _ out: UnsafeMutablePointer<Float>, _ factors: (Int) -> UnsafePointer<Float>) {
        let tokens = h.tokens, heads = h.heads
        parallelFor(tokens, threads: threads) { q, _ in
            let row = out + rowStart(q, tokens, heads, layout)
            scalePairRow(row, h.probs, q: q, heads: heads, factors(q))
            zeroTail(row, q, h, layout)
        }
    }

    /// The k > q part of an unflattened row.
    @inline(__always)
    private func zeroTail(_ row: UnsafeMutablePointer<Float>, _ q: Int, _ h: AttentionHeads.Float32,
                          _ layout: DerivedScalarSpec.AttentionLayout) {
        guard layout == .unflattened, !outputZeroed else { return }
        (row + (q &+ 1) &* h.heads).update(repeating: 0, count: (h.tokens &- q &- 1) &* h.heads)
    }

    /// ‖Σ_k p[q, k, h] v[k, h] @ W_O[h]‖ (TDB: the norm of the head's summed write), from
    /// the weighted sum of values and the head's Gram matrix.
    private func perSequenceNorms(_ h: AttentionHeads.Float32, _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let tokens = h.tokens, heads = h.heads, dHead = h.dHead
        let lanes = laneCount(heads, threads: threads)
        let perLane = dHead &* dHead &+ 2 &* tokens &* dHead &+ Self.queryBlock &* tokens
        try withScratch(Float.self, count: lanes &* perLane, "weighted values") { (scratch) throws(NodeWriteError) in
            parallelFor(heads, threads: threads) { head, lane in
                let gram = scratch + lane &* perLane, sums = gram + dHead &* dHead
                let y = sums + tokens &* dHead, masked = y + tokens &* dHead
                h.gram(head, into: gram)
                h.weightedValues(head, rows: 0..<tokens, masked: masked, into: sums)
                gemm(m: tokens, n: dHead, k: dHead, a: F32Matrix(base: sums, rowStride: dHead, columnStride: 1),
                     b: F32Matrix(base: gram, rowStride: dHead, columnStride: 1), c: y, cRowStride: dHead)
                for q in 0..<tokens {
                    let x = F32Matrix(base: sums + q &* dHead, rowStride: dHead, columnStride: 1)
                    out[q &* heads &+ head] = quadraticNorm(x, y + q &* dHead, dHead)
                }
            }
        }
    }

    /// Projections onto per-token rows of g: U = g_Z @ W_O[h]ᵀ, then v[k] · U[q] for k ≤ q in
    /// blocks of queries; rows of g that are zero give rows of exact zeros.
    private func perTokenProjections(_ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout,
                                     _ rowTokens: UnsafeBufferPointer<Int>, _ g: F32Matrix,
                                     _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let tokens = h.tokens, heads = h.heads, dHead = h.dHead
        let used = rowTokens.count, block = Self.queryBlock, uRow = heads &* dHead
        let tasks = (tokens &+ block &- 1) / block
        let lanes = laneCount(tasks, threads: threads)
        // Per lane: each head's block of projections (block × T).
        let perLane = heads &* block &* tokens
        try withScratch(Float.self, count: max(1, used) &* uRow, "projected directions") { (u) throws(NodeWriteError) in
            if used > 0, let all = h.headRows {
                // One product for all heads: U = g_Z @ W_O[(h, c), :]ᵀ.
                try Kernels.gemm(m: used, n: uRow, k: h.dModel, a: g, b: all.transposed, c: u, cRowStride: uRow, threads: threads)
            } else {
                for head in 0..<heads where used > 0 {
                    try Kernels.gemm(m: used, n: dHead, k: h.dModel, a: g, b: h.weight(head).transposed, c: u + head &* dHead,
                                     cRowStride: uRow, threads: threads)
                }
            }
            try withScratch(Int.self, count: tokens, "projection rows") { (rowOf) throws(NodeWriteError) in
                for t in 0..<tokens { rowOf[t] = -1 }
                for (z, t) in rowTokens.enumerated() { rowOf[t] = z }
                try withScratch(Float.self, count: lanes &* perLane, "projections") { (scratch) throws(NodeWriteError) in
                    parallelFor(tasks, threads: threads) { task, lane in
                        let q0 = task &* block, q1 = min(tokens, q0 &+ block)
                        let blocks = scratch + lane &* perLane
                        // P[q, k] = U[q] · v[k] for each head: one product per head when the block's
                        // rows of g are consecutive (always, for a dense g), else one per row.
                        let dense = (q0..<q1).allSatisfy { rowOf[$0] == rowOf[q0] &+ ($0 &- q0) } && rowOf[q0] >= 0
                        for head in 0..<heads {
                            let pBlock = blocks + head &* block &* tokens, vT = h.values(head).transposed
                            if dense {
                                gemm(m: q1 &- q0, n: q1, k: dHead,
                                     a: F32Matrix(base: u + (rowOf[q0] &* uRow &+ head &* dHead), rowStride: uRow, columnStride: 1),
                                     b: vT, c: pBlock, cRowStride: q1)
                            } else {
                                for q in q0..<q1 where rowOf[q] >= 0 {
                                    gemm(m: 1, n: q &+ 1, k: dHead,
                                         a: F32Matrix(base: u + (rowOf[q] &* uRow &+ head &* dHead), rowStride: 0, columnStride: 1),
                                         b: vT, c: pBlock + (q &- q0) &* q1, cRowStride: q1)
                                }
                            }
                        }
                        for q in q0..<q1 {
                            let zero = rowOf[q] < 0
                            let row = layout == .perSequenceToken ? out + q &* heads : out + rowStart(q, tokens, heads, layout)
                            if zero {
                                if !outputZeroed { row.update(repeating: 0, count: layout == .perSequenceToken ? heads : (q &+ 1) &* heads) }
                            } else {
                                // Head by head from its block of P (no interleaving pass): out[q, k, h] =
                                // p[q, k, h] · P_h[q, k], or their sum over k per head.
                                let probs = h.probs, rowInBlock = (q &- q0) &* q1
                                for head in 0..<heads {
                                    let pRow = UnsafePointer(blocks + (head &* block &* tokens &+ rowInBlock))
                                    if layout == .perSequenceToken {
                                        row[head] = dotPairs(probs, q: q, head: head, pRow)
                                    } else {
                                        scalePairs(row + head, stride: heads, probs, q: q, head: head, pRow)
                                    }
                                }
                            }
                            if layout != .perSequenceToken { zeroTail(row, q, h, layout) }
                        }
                    }
                }
            }
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

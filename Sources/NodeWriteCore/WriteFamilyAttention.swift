/// The attention members of the write family: for head h, the write of (q, k, h) is
/// p[q, k, h] · v[k, h] @ W_O[h]; only k ≤ q is computed, and k > q is exactly 0.
extension DerivedScalarRun {
    /// Query rows per parallel task.
    static let queryBlock = 32

    func attention(_ form: LayerForm, _ layout: DerivedScalarSpec.AttentionLayout,
                   _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        guard case .heads(let weight) = form.source.blocks, let values = form.values else {
            preconditionFailure("attention derived scalars read attention heads")
        }
        let heads = AttentionHeads(form: form, weight: weight.view, values: values)
        try heads.withFloat32 { (h) throws(NodeWriteError) in
            guard let direction else {
                if layout == .perSequenceToken { return try perSequenceNorms(h, out) }
                return try withKeyFactors(h, { (f) throws(NodeWriteError) in try h.keyNorms(into: f, threads: threads) }) { f in
                    writePairs(h, layout, out) { _, k, head in f[k &* h.heads &+ head] }
                }
            }
            try direction.withRows { (rowTokens, g) throws(NodeWriteError) in
                if direction.shared {
                    try withKeyFactors(h, { (f) throws(NodeWriteError) in
                        if rowTokens.isEmpty { f.update(repeating: 0, count: h.tokens &* h.heads) } else { try h.keyProjections(g, into: f, threads: threads) }
                    }) { f in
                        if layout == .perSequenceToken {
                            sumPairs(h, out) { _, k, head in f[k &* h.heads &+ head] }
                        } else {
                            writePairs(h, layout, out) { _, k, head in f[k &* h.heads &+ head] }
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

    /// out[q, k, h] = p[q, k, h] · factor(q, k, h) for k ≤ q, in TDB's unflattened or
    /// flattened layout (and 0 for k > q when unflattened).
    private func writePairs(_ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout,
                            _ out: UnsafeMutablePointer<Float>, _ factor: (Int, Int, Int) -> Float) {
        let tokens = h.tokens, heads = h.heads, p = h.probs
        parallelFor(tokens, threads: threads) { q, _ in
            let row = out + rowStart(q, tokens, heads, layout)
            for k in 0...q {
                for head in 0..<heads {
                    let f = factor(q, k, head)
                    row[k &* heads &+ head] = f == 0 ? 0 : p.value(at: p.offset(q, k, head)) * f
                }
            }
            if layout == .unflattened {
                (row + (q &+ 1) &* heads).update(repeating: 0, count: (tokens &- q &- 1) &* heads)
            }
        }
    }

    /// out[q, h] = Σ_{k ≤ q} p[q, k, h] · factor(q, k, h).
    private func sumPairs(_ h: AttentionHeads.Float32, _ out: UnsafeMutablePointer<Float>, _ factor: (Int, Int, Int) -> Float) {
        let heads = h.heads, p = h.probs
        parallelFor(h.tokens, threads: threads) { q, _ in
            for head in 0..<heads {
                var sum: Float = 0
                for k in 0...q { sum = sum.addingProduct(p.value(at: p.offset(q, k, head)), factor(q, k, head)) }
                out[q &* heads &+ head] = sum
            }
        }
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
    /// blocks of queries (rows of g that are zero give 0).
    private func perTokenProjections(_ h: AttentionHeads.Float32, _ layout: DerivedScalarSpec.AttentionLayout,
                                     _ rowTokens: UnsafeBufferPointer<Int>, _ g: F32Matrix,
                                     _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let tokens = h.tokens, heads = h.heads, dHead = h.dHead, p = h.probs
        let used = rowTokens.count, block = Self.queryBlock
        let tasks = (tokens &+ block &- 1) / block
        let lanes = laneCount(tasks, threads: threads)
        try withScratch(Float.self, count: max(1, used) &* heads &* dHead, "projected directions") { (u) throws(NodeWriteError) in
            for head in 0..<heads where used > 0 {
                try Kernels.gemm(m: used, n: dHead, k: h.dModel, a: g, b: h.weight(head).transposed, c: u + head &* dHead,
                                 cRowStride: heads &* dHead, threads: threads)
            }
            try withScratch(Int.self, count: tokens, "projection rows") { (rowOf) throws(NodeWriteError) in
                for t in 0..<tokens { rowOf[t] = -1 }
                for (z, t) in rowTokens.enumerated() { rowOf[t] = z }
                try withScratch(Float.self, count: lanes &* block &* tokens, "projections") { (scratch) throws(NodeWriteError) in
                    parallelFor(tasks, threads: threads) { task, lane in
                        let q0 = task &* block, q1 = min(tokens, q0 &+ block), pBlock = scratch + lane &* block &* tokens
                        // Rows of g that are used, consecutive in g (all of them for a dense g), go as one product.
                        let dense = (q0..<q1).allSatisfy { rowOf[$0] >= 0 && rowOf[$0] == rowOf[q0] &+ ($0 &- q0) }
                        for head in 0..<heads {
                            let vT = h.values(head).transposed
                            if dense {
                                gemm(m: q1 &- q0, n: q1, k: dHead,
                                     a: F32Matrix(base: u + (rowOf[q0] &* heads &* dHead &+ head &* dHead),
                                                  rowStride: heads &* dHead, columnStride: 1),
                                     b: vT, c: pBlock, cRowStride: q1)
                            }
                            for q in q0..<q1 {
                                let pRow = dense ? pBlock + (q &- q0) &* q1 : pBlock
                                if !dense, rowOf[q] >= 0 {
                                    gemm(m: 1, n: q &+ 1, k: dHead,
                                         a: F32Matrix(base: u + (rowOf[q] &* heads &* dHead &+ head &* dHead), rowStride: 0, columnStride: 1),
                                         b: vT, c: pRow, cRowStride: q &+ 1)
                                }
                                let zero = rowOf[q] < 0
                                if layout == .perSequenceToken {
                                    var sum: Float = 0
                                    if !zero { for k in 0...q { sum = sum.addingProduct(p.value(at: p.offset(q, k, head)), pRow[k]) } }
                                    out[q &* heads &+ head] = sum
                                } else {
                                    let row = out + rowStart(q, tokens, heads, layout)
                                    for k in 0...q {
                                        row[k &* heads &+ head] = zero || pRow[k] == 0 ? 0 : p.value(at: p.offset(q, k, head)) * pRow[k]
                                    }
                                    if layout == .unflattened, head == 0 {
                                        (row + (q &+ 1) &* heads).update(repeating: 0, count: (tokens &- q &- 1) &* heads)
                                    }
                                }
                            }
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

/// The per-sequence-token attention members of the write family when the store holds the head's
/// mixed values z[q, h] = Σ_k p[q, k, h] v[k, h] (activation attn.v_out, TransformerLens's
/// hook_z) at the layer: the sum over keys is then read, not recomputed.
///
/// - norm: ‖z[q, h] @ W_O[h]‖ = sqrt(z G zᵀ) with the head's Gram matrix G = W_O[h] W_O[h]ᵀ;
/// - projection: z[q, h] · (W_O[h] g[q]), W_O[h] g first (once for a shared direction, one
///   (rows of g) × d_model × (heads · d_head) product otherwise; rows of g that are zero give 0).
///
/// The result agrees with the p · v route to float32 rounding (the sums are taken in another
/// order), not bit for bit.
extension DerivedScalarRun {
    func mixedValuesPerSequenceToken(_ h: AttentionHeads.Float32, _ mixed: TensorView, _ weight: WeightStorage,
                                     _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        try mixed.withF32Heads(h.tokens, h.heads, h.dHead) { (z) throws(NodeWriteError) in
            // The same head inputs with v replaced by z: keyNorms / keyProjections then give one
            // value per (query, head), at out[q · heads + h].
            let hz = AttentionHeads.Float32(tokens: h.tokens, heads: h.heads, dHead: h.dHead, dModel: h.dModel,
                                            causal: h.causal, probs: h.probs, w: h.w, v: z)
            guard let direction else {
                return try weight.grams.withGrams(h, of: weight, threads: threads) { (grams) throws(NodeWriteError) in
                    try hz.keyNorms(grams, into: out, threads: threads)
                }
            }
            try direction.withRows { (rowTokens, g) throws(NodeWriteError) in
                if direction.shared {
                    if rowTokens.isEmpty { out.update(repeating: 0, count: h.tokens &* h.heads) } else {
                        try hz.keyProjections(g, into: out, threads: threads)
                    }
                    return
                }
                try mixedProjections(hz, rowTokens, g, out)
            }
        }
    }

    /// out[t, h] = z[t, h] · U[row(t), h] with U = g @ W_Oᵀ for the rows of g given, 0 elsewhere.
    private func mixedProjections(_ hz: AttentionHeads.Float32, _ rowTokens: UnsafeBufferPointer<Int>, _ g: F32Matrix,
                                  _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let heads = hz.heads, dHead = hz.dHead, used = rowTokens.count, uRow = heads &* dHead
        if !outputZeroed { out.update(repeating: 0, count: hz.tokens &* heads) }
        guard used > 0 else { return }
        try withScratch(Float.self, count: used &* uRow, "projected directions") { (u) throws(NodeWriteError) in
            if let all = hz.headRows {
                try Kernels.gemm(m: used, n: uRow, k: hz.dModel, a: g, b: all.transposed, c: u, cRowStride: uRow, threads: threads)
            } else {
                for head in 0..<heads {
                    try Kernels.gemm(m: used, n: dHead, k: hz.dModel, a: g, b: hz.weight(head).transposed, c: u + head &* dHead,
                                     cRowStride: uRow, threads: threads)
                }
            }
            let z = hz.v
            parallelFor(used, threads: threads) { row, _ in
                let t = rowTokens[row], ur = u + row &* uRow
                for head in 0..<heads {
                    let zb = z.base + t &* z.strides.0 + head &* z.strides.1, uh = ur + head &* dHead
                    var sum: Float = 0
                    for e in 0..<dHead { sum += zb[e &* z.strides.2] * uh[e] }
                    out[t &* heads &+ head] = sum
                }
            }
        }
    }
}

/// Act-times-grad: an activation times its loss gradient (backward pass), in TDB's layouts.
struct ActTimesGrad {
    let inputs: EdgeInputs
    let threads: Int

    /// (T, width) products of a (T, width) activation.
    func rows(_ a: UnsafePointer<Float>, _ g: UnsafePointer<Float>, tokens: Int, width: Int, out: UnsafeMutablePointer<Float>) {
        parallelFor(tokens, threads: threads) { t, _ in
            let o = t &* width
            for j in 0..<width { out[o &+ j] = a[o &+ j] * g[o &+ j] }
        }
    }

    /// Attention probabilities times their gradient: unflattened (T, T, H), flattened
    /// (T(T+1)/2, H) or summed over keys (T, H).
    func attention(_ p: UnsafePointer<Float>, _ g: UnsafePointer<Float>, tokens T: Int, heads H: Int,
                   layout: DerivedScalarSpec.AttentionLayout, out: UnsafeMutablePointer<Float>) {
        let TH = T &* H
        parallelFor(T, threads: threads) { q, _ in
            let pq = p + q &* TH, gq = g + q &* TH
            switch layout {
            case .unflattened, .none:
                let o = out + q &* TH, n = (q &+ 1) &* H
                for i in 0..<n { o[i] = pq[i] * gq[i] }
                (o + n).update(repeating: 0, count: TH &- n)
            case .flattened:
                let o = out + pairRow(q) &* H
                for i in 0..<((q &+ 1) &* H) { o[i] = pq[i] * gq[i] }
            case .perSequenceToken:
                let o = out + q &* H
                o.update(repeating: 0, count: H)
                for k in 0...q { for h in 0..<H { o[h] += pq[k &* H &+ h] * gq[k &* H &+ h] } }
            }
        }
    }

    /// token_attribution: out[t] = Σ_d resid.post_emb[t, d] · its gradient.
    func tokens(_ a: UnsafePointer<Float>, _ g: UnsafePointer<Float>, tokens: Int, dModel: Int, out: UnsafeMutablePointer<Float>) {
        for t in 0..<tokens { out[t] = dot(a + t &* dModel, g + t &* dModel, dModel) }
    }
}

/// In-edges: the forward-mode derivative of every downstream node of one layer along an
/// upstream node's write w (non-zero in one residual row u), times the downstream loss
/// gradient, computed analytically and contraction-first:
///
/// - the LayerNorm tangent of row u only (`LayerNormRule.jvp`);
/// - Q live: d logit[u, k, h] = A[k] · (W_K[h] dq[h]) + b_K[h] · dq[h], a (u+1) × d_model × heads
///   product (k is never formed); row u only, keys k <= u;
/// - K live: d logit[q, u, h] = A[q] · (W_Q[h] dk[h]) + b_Q[h] · dk[h] for q >= u; the softmax
///   derivative then touches rows q >= u through p[q, u, h];
/// - V live: column u only, p[q, u, h] (dv[h] · g[q, h]);
/// - MLP: row u, gelu'(pre[u]) · (da W_in) · g[u];
/// - latents: through the encoder and the ReLU (and, for an autoencoder on attention's
///   output, the whole attention block with Q, K and V live: rows q >= u).
///
/// p comes from the store's forward attn.qk_probs (the forward pass that made the store
/// computed it from the same residual); q, k and the MLP's pre-activation are recomputed.
struct InEdges {
    let inputs: EdgeInputs
    let layer: Int
    let tokens: Int
    let up: UpstreamWrite
    let threads: Int

    var D: Int { inputs.dims.dModel }
    var H: Int { inputs.dims.nHeads }
    var dh: Int { inputs.dims.dHead }
    var u: Int { up.row }

    /// The LayerNorm tangent da (d_model) of row u of the residual x, and the LayerNorm's
    /// xhat and s of that row.
    func tangent(_ x: UnsafePointer<Float>, gain: UnsafePointer<Float>, into da: UnsafeMutablePointer<Float>,
                 xhat: UnsafeMutablePointer<Float>) -> Float {
        let s = LayerNormRule.stats(x + u &* D, D, eps: inputs.eps, xhat: xhat)
        up.write.withUnsafeBufferPointer { w in
            LayerNormRule.jvp(w.baseAddress!, xhat: xhat, s: s, gain: gain, detach: inputs.detach, D, into: da)
        }
        return s
    }

    /// dlog[r, h] = (A[rows.lowerBound + r] · (W[h] d[h]) + b[h] · d[h]) · scale for the rows of the
    /// LayerNorm output A of x: the logit tangent with the other side's projection in d.
    func logitTangents(x: UnsafePointer<Float>, rows: Range<Int>, gain: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                       weight: HeadWeights, bias b: UnsafePointer<Float>, d: UnsafePointer<Float>,
                       into dlog: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let n = rows.count
        try withScratch(Float.self, count: H &* D &+ n &* D, "logit tangents") { (scratch) throws(NodeWriteError) in
            let r = scratch, a = scratch + H &* D  // r: (d_model × heads) column h = W[h] d[h]
            for h in 0..<H { product(1, D, dh, mat(d + h &* dh, dh), weight.headT(h), a, D); for i in 0..<D { r[i &* H &+ h] = a[i] } }
            let eps = inputs.eps
            parallelFor(n, threads: threads) { i, _ in
                let row = a + i &* D
                let s = LayerNormRule.stats(x + (rows.lowerBound &+ i) &* D, D, eps: eps, xhat: row)
                _ = s
                LayerNormRule.apply(row, D, gain: gain, bias: bias, into: row)
            }
            product(n, H, D, mat(a, D), mat(r, H), dlog, H, threads: threads)
            var bd = [Float](repeating: 0, count: H)
            for h in 0..<H { var acc: Float = 0; for e in 0..<dh { acc += b[h &* dh &+ e] * d[h &* dh &+ e] }; bd[h] = acc }
            let scale = inputs.scale
            for i in 0..<n { for h in 0..<H { dlog[i &* H &+ h] = (dlog[i &* H &+ h] + bd[h]) * scale } }
        }
    }

    /// The per-head projection d[h] = da @ W[h] (heads × d_head).
    func headTangents(_ da: UnsafePointer<Float>, _ w: HeadWeights, into d: UnsafeMutablePointer<Float>) {
        for h in 0..<H { product(1, dh, D, mat(da, D), w.head(h), d + h &* dh, dh) }
    }

    /// (T, T, heads) outputs of the Q, K and V in-edges.
    func attention(_ which: EdgeSpec.Downstream, out: UnsafeMutablePointer<Float>, zeroed: Bool) throws(NodeWriteError) {
        let T = tokens, x = try inputs.residual(.attention, layer, tokens: T)
        let gain = try inputs.weight(.layerNormGainPreAttn, layer), bias = try inputs.weight(.layerNormBiasPreAttn, layer)
        let p = try inputs.activation(.attnQKProbs, layer, .forward, [T, T, H])
        let g: UnsafePointer<Float> = which == .value
            ? try inputs.activation(.attnVOut, layer, .backward, [T, H, dh])
            : try inputs.activation(.attnQKProbs, layer, .backward, [T, T, H])
        let wLive = HeadWeights(base: try inputs.weight(which == .query ? .attnToQuery : which == .key ? .attnToKey : .attnToValue, layer),
                                dModel: D, dHead: dh)
        let other = which == .value ? nil : HeadWeights(base: try inputs.weight(which == .query ? .attnToKey : .attnToQuery, layer),
                                                        dModel: D, dHead: dh)
        let otherBias = which == .value ? nil : try inputs.weight(which == .query ? .attnKeyBias : .attnQueryBias, layer)
        let rows = which == .query ? 0..<(u &+ 1) : u..<T
        try withScratch(Float.self, count: 2 &* D &+ H &* dh &+ rows.count &* H, "the tangent") { (s) throws(NodeWriteError) in
            let da = s, xhat = s + D, d = s + 2 &* D, dlog = d + H &* dh
            _ = tangent(x, gain: gain, into: da, xhat: xhat)
            headTangents(da, wLive, into: d)
            if let other, let otherBias {
                try logitTangents(x: x, rows: rows, gain: gain, bias: bias, weight: other, bias: otherBias, d: d, into: dlog)
            }
            let TH = T &* H
            switch which {
            case .query:
                if !zeroed { fillZeros(out, u &* TH, threads: threads); fillZeros(out + (u &+ 1) &* TH, (T &- u &- 1) &* TH, threads: threads) }
                let pu = p + u &* TH, gu = g + u &* TH, o = out + u &* TH
                var sums = [Float](repeating: 0, count: H)
                for k in 0...u { for h in 0..<H { sums[h] += pu[k &* H &+ h] * dlog[k &* H &+ h] } }
                for k in 0...u { for h in 0..<H { let i = k &* H &+ h; o[i] = pu[i] * (dlog[i] - sums[h]) * gu[i] } }
                (o + (u &+ 1) &* H).update(repeating: 0, count: (T &- u &- 1) &* H)
            case .key:
                if !zeroed { fillZeros(out, u &* TH, threads: threads) }
                parallelFor(T &- u, threads: threads) { r, _ in
                    let q = u &+ r, pq = p + q &* TH, gq = g + q &* TH, o = out + q &* TH
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: H) { c in
                        for h in 0..<H { c[h] = pq[u &* H &+ h] * dlog[r &* H &+ h] }
                        for k in 0...q {
                            let row = k &* H
                            for h in 0..<H { let i = row &+ h; o[i] = (-pq[i] * c[h]) * gq[i] }
                        }
                        for h in 0..<H { let i = u &* H &+ h; o[i] = (-pq[i] * c[h] + c[h]) * gq[i] }
                    }
                    (o + (q &+ 1) &* H).update(repeating: 0, count: (T &- q &- 1) &* H)
                }
            case .value:
                if !zeroed { fillZeros(out, T &* TH, threads: threads) }
                for q in u..<T {
                    for h in 0..<H {
                        let i = q &* TH &+ u &* H &+ h
                        out[i] = p[i] * dot(g + (q &* H &+ h) &* dh, d + h &* dh, dh)
                    }
                }
            default: break
            }
        }
    }

    /// (T, d_ff): row u only.
    func mlp(out: UnsafeMutablePointer<Float>, zeroed: Bool) throws(NodeWriteError) {
        let T = tokens, F = inputs.dims.dFF
        let g = try inputs.activation(.mlpPostAct, layer, .backward, [T, F])
        try withScratch(Float.self, count: F, "the MLP tangent") { (row) throws(NodeWriteError) in
            try mlpTangent(into: row)
            if !zeroed { fillZeros(out, T &* F, threads: threads) }
            let o = out + u &* F, gu = g + u &* F
            for n in 0..<F { o[n] = row[n] * gu[n] }
        }
    }

    /// gelu'(pre[u]) · (da W_in) (d_ff) into `row` (`MLPRow.tangent`).
    func mlpTangent(into row: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        try up.write.withUnsafeBufferPointer { (w) throws(NodeWriteError) in
            try MLPRow(inputs: inputs, layer: layer, tokens: tokens).tangent(u: u, write: w.baseAddress!, into: row)
        }
    }

    /// (T, n_latents) of the single autoencoder.
    func autoencoder(_ ae: EdgeAutoencoder, out: UnsafeMutablePointer<Float>, zeroed: Bool) throws(NodeWriteError) {
        let T = tokens, nL = ae.latents
        let z = try inputs.latents(ae, .forward, tokens: T), g = try inputs.latents(ae, .backward, tokens: T)
        let enc = try inputs.encoder(ae)
        switch (ae.side, ae.input) {
        case (.mlp, .mlpPostAct):
            let F = inputs.dims.dFF
            try withScratch(Float.self, count: F &+ nL, "the latent tangent") { (s) throws(NodeWriteError) in
                try mlpTangent(into: s)
                let dz = s + F
                product(1, nL, F, mat(s, F), mat(enc, 1, F), dz, nL)
                if !zeroed { fillZeros(out, T &* nL, threads: threads) }
                for j in 0..<nL {
                    let i = u &* nL &+ j
                    out[i] = (z[i] > 0 ? dz[j] : 0) * g[i]
                }
            }
        case (.attention, .residual):
            try attentionBlockLatents(ae, z: z, g: g, enc: enc, out: out, zeroed: zeroed)
        default:
            throw .unsupported("online_autoencoder_in_edge_attribution: the autoencoder of \(ae.nodeType.name) reads \(ae.input == .attnZ ? "attention's z" : "the MLP's output"), which TDB's in-edges do not cover; only autoencoders on mlp_post_act and resid_delta_attn are")
        }
    }

    /// An autoencoder on attention's output: Q, K and V live, rows q >= u.
    private func attentionBlockLatents(_ ae: EdgeAutoencoder, z: UnsafePointer<Float>, g: UnsafePointer<Float>,
                                       enc: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, zeroed: Bool) throws(NodeWriteError) {
        let T = tokens, nL = ae.latents, HD = H &* dh, TH = T &* H
        let x = try inputs.residual(.attention, layer, tokens: T)
        let gain = try inputs.weight(.layerNormGainPreAttn, layer), bias = try inputs.weight(.layerNormBiasPreAttn, layer)
        let p = try inputs.activation(.attnQKProbs, layer, .forward, [T, T, H])
        let v = try inputs.activation(.attnValue, layer, .forward, [T, H, dh])
        let wO = try inputs.weight(.attnToResidual, layer)
        let wQ = HeadWeights(base: try inputs.weight(.attnToQuery, layer), dModel: D, dHead: dh)
        let wK = HeadWeights(base: try inputs.weight(.attnToKey, layer), dModel: D, dHead: dh)
        let wV = HeadWeights(base: try inputs.weight(.attnToValue, layer), dModel: D, dHead: dh)
        let bQ = try inputs.weight(.attnQueryBias, layer), bK = try inputs.weight(.attnKeyBias, layer)
        let vOut: UnsafePointer<Float>? = inputs.store[.attnVOut, layer, .forward] != nil
            ? try inputs.activation(.attnVOut, layer, .forward, [T, H, dh]) : nil
        let n = T &- u
        // dlat = dz W_O encᵀ, ordered by cost: (dz W_O) encᵀ costs n·HD·D + n·D·nL multiply-adds,
        // dz (W_O encᵀ) HD·D·nL + n·HD·nL (fewer once the n rows outnumber the latents when HD = D).
        let foldFirst = HD &* D &* nL &+ n &* HD &* nL < n &* HD &* D &+ n &* D &* nL
        let middle = foldFirst ? HD &* nL : n &* D
        let count = 2 &* D &+ 3 &* HD &+ (u &+ 1) &* H &+ n &* H &+ n &* HD &+ middle &+ n &* nL
        try withScratch(Float.self, count: count, "the attention-block tangent") { (s) throws(NodeWriteError) in
            let da = s, xhat = s + D, dq = s + 2 &* D, dk = dq + HD, dv = dk + HD
            let dlogQ = dv + HD, dlogK = dlogQ + (u &+ 1) &* H, dz = dlogK + n &* H, mid = dz + n &* HD, dlat = mid + middle
            _ = tangent(x, gain: gain, into: da, xhat: xhat)
            headTangents(da, wQ, into: dq)
            headTangents(da, wK, into: dk)
            headTangents(da, wV, into: dv)
            try logitTangents(x: x, rows: 0..<(u &+ 1), gain: gain, bias: bias, weight: wK, bias: bK, d: dq, into: dlogQ)
            try logitTangents(x: x, rows: u..<T, gain: gain, bias: bias, weight: wQ, bias: bQ, d: dk, into: dlogK)
            // dz[q, h] = c_q (v[u, h] - v_out[q, h]) + p[q, u, h] dv[h] (+ the Q term on row u),
            // c_q = p[q, u, h] dlogK[q, h]: the softmax derivative with K live summed against v.
            parallelFor(n, threads: threads) { r, _ in
                let q = u &+ r
                for h in 0..<H {
                    let pqu = p[q &* TH &+ u &* H &+ h], c = pqu * dlogK[r &* H &+ h]
                    let o = dz + (r &* H &+ h) &* dh, vu = v + (u &* H &+ h) &* dh
                    for e in 0..<dh {
                        var mix: Float
                        if let vOut { mix = vOut[(q &* H &+ h) &* dh &+ e] } else {
                            mix = 0
                            for k in 0...q { mix += p[q &* TH &+ k &* H &+ h] * v[(k &* H &+ h) &* dh &+ e] }
                        }
                        o[e] = c * (vu[e] - mix) + pqu * dv[h &* dh &+ e]
                    }
                    if q == u {
                        var sum: Float = 0
                        for k in 0...u { sum += p[u &* TH &+ k &* H &+ h] * dlogQ[k &* H &+ h] }
                        for k in 0...u {
                            let dp = p[u &* TH &+ k &* H &+ h] * (dlogQ[k &* H &+ h] - sum)
                            let vk = v + (k &* H &+ h) &* dh
                            for e in 0..<dh { o[e] += dp * vk[e] }
                        }
                    }
                }
            }
            if foldFirst {
                product(HD, nL, D, mat(wO, D), mat(enc, 1, D), mid, nL, threads: threads)
                product(n, nL, HD, mat(dz, HD), mat(mid, nL), dlat, nL, threads: threads)
            } else {
                product(n, D, HD, mat(dz, HD), mat(wO, D), mid, D, threads: threads)
                product(n, nL, D, mat(mid, D), mat(enc, 1, D), dlat, nL, threads: threads)
            }
            if !zeroed { fillZeros(out, T &* nL, threads: threads) }
            for r in 0..<n {
                let q = u &+ r
                for j in 0..<nL { let i = q &* nL &+ j; out[i] = (z[i] > 0 ? dlat[r &* nL &+ j] : 0) * g[i] }
            }
        }
    }
}

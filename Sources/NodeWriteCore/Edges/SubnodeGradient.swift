/// G (T, d_model): the gradient at the residual before a downstream subnode of act[idx] · g[idx]
/// (g fixed), by hand: the subnode's own rule, then the LayerNorm's adjoint row by row
/// (`LayerNormRule.vjp`, scale detached or not). Only the rows that can be non-zero are
/// computed (Q: row q0; K: rows <= q0; V: row k0; MLP and MLP-side latents: row t0; a latent of
/// an autoencoder on attention's output: rows <= t0).
struct SubnodeGradient {
    let inputs: EdgeInputs
    let node: EdgeNode
    let tokens: Int

    var D: Int { inputs.dims.dModel }
    var H: Int { inputs.dims.nHeads }
    var dh: Int { inputs.dims.dHead }
    var layer: Int { node.node.layer }

    /// The side of the subnode: the block whose LayerNorm is in front of it.
    func side() throws(NodeWriteError) -> Side {
        switch node.node.nodeType {
        case .attentionHead: .attention
        case .mlpNeuron: .mlp
        default: try inputs.autoencoder(node.node.nodeType, layer).side
        }
    }

    /// Writes G, all T rows, into g (T × d_model).
    func compute(into G: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let T = tokens
        let n = node.node
        switch n.nodeType {
        case .attentionHead:
            let x = try inputs.residual(.attention, layer, tokens: T)
            let gain = try inputs.weight(.layerNormGainPreAttn, layer), bias = try inputs.weight(.layerNormBiasPreAttn, layer)
            let q0 = try inputs.index(n, 0, size: T), k0 = try inputs.index(n, 1, size: T), h0 = try inputs.index(n, 2, size: H)
            let p = try inputs.activation(.attnQKProbs, layer, .forward, [T, T, H])
            let TH = T &* H, pq = p + q0 &* TH
            switch node.subnode {
            case .query, .key:
                let g = try inputs.activation(.attnQKProbs, layer, .backward, [T, T, H])
                let wQ = HeadWeights(base: try inputs.weight(.attnToQuery, layer), dModel: D, dHead: dh)
                let wK = HeadWeights(base: try inputs.weight(.attnToKey, layer), dModel: D, dHead: dh)
                let bQ = try inputs.weight(.attnQueryBias, layer), bK = try inputs.weight(.attnKeyBias, layer)
                let c = pq[k0 &* H &+ h0] * g[q0 &* TH &+ k0 &* H &+ h0] * inputs.scale
                let rows = q0 &+ 1, eps = inputs.eps, detach = inputs.detach
                // Each row's LayerNorm is recomputed where it is used (no rows × d_model scratch).
                try withScratch(Float.self, count: rows &* dh &+ 3 &* D &+ 2 &* dh, "the subnode gradient") {
                    (s) throws(NodeWriteError) in
                    let kh = s, xhat = kh + rows &* dh, a = xhat + D, abar = a + D, vec = abar + D
                    fillZeros(G, T &* D, threads: inputs.threads)
                    if node.subnode == .query {
                        // kbar = k[k0] - Σ_k p[q0, k] k[k]; abar[q0] = W_Q[h0] (c kbar)
                        parallelFor(rows, threads: inputs.threads) { r, _ in
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: D) { t in
                                let row = t.baseAddress!
                                _ = LayerNormRule.stats(x + r &* D, D, eps: eps, xhat: row)
                                LayerNormRule.apply(row, D, gain: gain, bias: bias, into: row)
                                product(1, dh, D, mat(row, D), wK.head(h0), kh + r &* dh, dh)
                            }
                            for e in 0..<dh { kh[r &* dh &+ e] += bK[h0 &* dh &+ e] }
                        }
                        for e in 0..<dh {
                            var mix: Float = 0
                            for k in 0..<rows { mix += pq[k &* H &+ h0] * kh[k &* dh &+ e] }
                            vec[e] = c * (kh[k0 &* dh &+ e] - mix)
                        }
                        product(1, D, dh, mat(vec, dh), wQ.headT(h0), abar, D)
                        let sq = LayerNormRule.stats(x + q0 &* D, D, eps: eps, xhat: xhat)
                        LayerNormRule.vjp(abar, xhat: xhat, s: sq, gain: gain, detach: detach, D, into: G + q0 &* D)
                    } else {
                        // abar[k] = c (δ_k,k0 - p[q0, k]) (W_K[h0] q[q0, h0]) for k <= q0
                        _ = LayerNormRule.stats(x + q0 &* D, D, eps: eps, xhat: xhat)
                        LayerNormRule.apply(xhat, D, gain: gain, bias: bias, into: a)
                        product(1, dh, D, mat(a, D), wQ.head(h0), vec, dh)
                        for e in 0..<dh { vec[e] += bQ[h0 &* dh &+ e] }
                        let r = abar
                        product(1, D, dh, mat(vec, dh), wK.headT(h0), r, D)
                        parallelFor(rows, threads: inputs.threads) { k, _ in
                            var coef = -pq[k &* H &+ h0]
                            if k == k0 { coef += 1 }
                            let f = c * coef, row = G + k &* D
                            for i in 0..<D { row[i] = f * r[i] }
                            withUnsafeTemporaryAllocation(of: Float.self, capacity: D) { t in
                                let xh = t.baseAddress!
                                let sk = LayerNormRule.stats(x + k &* D, D, eps: eps, xhat: xh)
                                LayerNormRule.vjp(row, xhat: xh, s: sk, gain: gain, detach: detach, D, into: row)
                            }
                        }
                    }
                }
            case .value:
                let gv = try inputs.activation(.attnVOut, layer, .backward, [T, H, dh])
                let wV = HeadWeights(base: try inputs.weight(.attnToValue, layer), dModel: D, dHead: dh)
                try withScratch(Float.self, count: 2 &* D &+ dh, "the subnode gradient") { (s) throws(NodeWriteError) in
                    let xhat = s, abar = s + D, vbar = s + 2 &* D
                    let sk = LayerNormRule.stats(x + k0 &* D, D, eps: inputs.eps, xhat: xhat)
                    let pv = pq[k0 &* H &+ h0]
                    for e in 0..<dh { vbar[e] = pv * gv[(q0 &* H &+ h0) &* dh &+ e] }
                    product(1, D, dh, mat(vbar, dh), wV.headT(h0), abar, D)
                    fillZeros(G, T &* D, threads: inputs.threads)
                    LayerNormRule.vjp(abar, xhat: xhat, s: sk, gain: gain, detach: inputs.detach, D, into: G + k0 &* D)
                }
            case .none:
                throw .invalidArgument("subnode: an attention head as a downstream subnode needs NW_SUBNODE_Q, NW_SUBNODE_K or NW_SUBNODE_V (TDB's q_k_or_v)")
            }
        case .mlpNeuron:
            let F = inputs.dims.dFF
            let t0 = try inputs.index(n, 0, size: T), n0 = try inputs.index(n, 1, size: F)
            let g = try inputs.activation(.mlpPostAct, layer, .backward, [T, F])
            let c = g[t0 &* F &+ n0]
            try MLPRow(inputs: inputs, layer: layer, tokens: T).gradient(t0: t0, into: G) { pre, preBar in
                for i in 0..<F { preBar[i] = 0 }
                preBar[n0] = inputs.activation.derivative(pre[n0]) * c
            }
        default:
            let ae = try inputs.autoencoder(n.nodeType, layer)
            let t0 = try inputs.index(n, 0, size: T), j = try inputs.index(n, 1, size: ae.latents)
            let z = try inputs.latents(ae, .forward, tokens: T, generic: n.nodeType == .autoencoderLatent)
            let g = try inputs.latents(ae, .backward, tokens: T, generic: n.nodeType == .autoencoderLatent)
            let enc = try inputs.encoder(ae)
            let i = t0 &* ae.latents &+ j
            let c = (z[i] > 0 ? Float(1) : 0) * g[i]
            let nIn = ae.autoencoder.decoder.view.shape[1], e = enc + j &* nIn
            switch (ae.side, ae.input) {
            case (.mlp, .mlpPostAct):
                try MLPRow(inputs: inputs, layer: layer, tokens: T).gradient(t0: t0, into: G) { pre, preBar in
                    let act = inputs.activation
                    for k in 0..<nIn { preBar[k] = act.derivative(pre[k]) * e[k] * c }
                }
            case (.attention, .residual):
                try attentionBlockRows(t0: t0, ob: e, c: c, into: G)
            default:
                throw .unsupported("grad_of_single_subnode_attribution: the autoencoder of \(ae.nodeType.name) reads \(ae.input == .attnZ ? "attention's z" : "the MLP's output"); only autoencoders on mlp_post_act and resid_delta_attn are covered, as in TDB")
            }
        }
    }

    /// The gradient at the residual before attention of <c · ob, out[t0]>, out the attention
    /// layer's output before its bias, with Q, K and V live: rows <= t0. The LayerNorm's xhat
    /// of those rows is kept in G itself (the output) until each row's adjoint replaces it, so
    /// the scratch memory is O(rows × heads), not O(rows × d_model).
    private func attentionBlockRows(t0: Int, ob: UnsafePointer<Float>, c: Float, into G: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let T = tokens, HD = H &* dh, TH = T &* H, rows = t0 &+ 1, scale = inputs.scale
        let x = try inputs.residual(.attention, layer, tokens: T)
        let gain = try inputs.weight(.layerNormGainPreAttn, layer), bias = try inputs.weight(.layerNormBiasPreAttn, layer)
        let p = try inputs.activation(.attnQKProbs, layer, .forward, [T, T, H])
        let v = try inputs.activation(.attnValue, layer, .forward, [T, H, dh])
        let wO = try inputs.weight(.attnToResidual, layer)
        let wQ = HeadWeights(base: try inputs.weight(.attnToQuery, layer), dModel: D, dHead: dh)
        let wK = HeadWeights(base: try inputs.weight(.attnToKey, layer), dModel: D, dHead: dh)
        let wV = HeadWeights(base: try inputs.weight(.attnToValue, layer), dModel: D, dHead: dh)
        let bQ = try inputs.weight(.attnQueryBias, layer), bK = try inputs.weight(.attnKeyBias, layer)
        let count = rows &* (2 &* H &+ 1) &+ 4 &* D &+ 3 &* HD &+ H &+ 3 &* H &* D
        try withScratch(Float.self, count: count, "the subnode gradient") { (s) throws(NodeWriteError) in
            let lp = s, sc = lp + rows &* 2 &* H, a0 = sc + rows, obc = a0 + D, qrow = obc + D, tmp = qrow + D
            let zbar = tmp + D, q = zbar + HD, qbar = q + HD, lsum = qbar + HD
            let r2 = lsum + H, m = r2 + 2 &* H &* D
            // lp[k] = (lbar[k, 0..<H], p0[k, 0..<H]); r2 = (rk[0..<H]; rv[0..<H]) (2H × d_model)
            let eps = inputs.eps, detach = inputs.detach
            if rows < T { fillZeros(G + rows &* D, (T &- rows) &* D, threads: inputs.threads) }
            parallelFor(rows, threads: inputs.threads) { r, _ in
                sc[r] = LayerNormRule.stats(x + r &* D, D, eps: eps, xhat: G + r &* D)
            }
            LayerNormRule.apply(G + t0 &* D, D, gain: gain, bias: bias, into: a0)
            for i in 0..<D { obc[i] = ob[i] * c }
            // zbar[h] = W_O[h] ob (the gradient at v_out[t0]); q[t0]
            product(1, HD, D, mat(obc, D), mat(wO, 1, D), zbar, HD)
            for h in 0..<H {
                product(1, dh, D, mat(a0, D), wQ.head(h), q + h &* dh, dh)
                for e in 0..<dh { q[h &* dh &+ e] += bQ[h &* dh &+ e] }
            }
            // lbar[k, h] = p0 (pbar - Σ p0 pbar), pbar[k, h] = zbar[h] · v[k, h]
            let H2 = 2 &* H
            for h in 0..<H {
                var sum: Float = 0
                for k in 0..<rows {
                    let pk = p[t0 &* TH &+ k &* H &+ h]
                    lp[k &* H2 &+ H &+ h] = pk
                    let pb = dot(zbar + h &* dh, v + (k &* H &+ h) &* dh, dh)
                    lp[k &* H2 &+ h] = pb
                    sum += pk * pb
                }
                var ls: Float = 0
                for k in 0..<rows { let i = k &* H2 &+ h; lp[i] = lp[i &+ H] * (lp[i] - sum); ls += lp[i] }
                lsum[h] = ls
                // rk[h] = scale · W_K[h] q[t0, h]; rv[h] = W_V[h] zbar[h]
                product(1, D, dh, mat(q + h &* dh, dh), wK.headT(h), r2 + h &* D, D)
                for i in 0..<D { r2[h &* D &+ i] *= scale }
                product(1, D, dh, mat(zbar + h &* dh, dh), wV.headT(h), r2 + (H &+ h) &* D, D)
            }
            // qbar[h] = scale (Σ_k lbar[k, h] A[k] W_K[h] + b_K[h] Σ_k lbar[k, h]), A[k] = xhat[k] gain + bias;
            // qrow = Σ_h W_Q[h] qbar[h] joins abar[t0]
            product(H, D, rows, mat(lp, 1, H2), mat(G, D), m, D, threads: inputs.threads)
            for i in 0..<D { qrow[i] = 0 }
            for h in 0..<H {
                let mh = m + h &* D
                for i in 0..<D { mh[i] = mh[i] * gain[i] + bias[i] * lsum[h] }
                product(1, dh, D, mat(mh, D), wK.head(h), qbar + h &* dh, dh)
                for e in 0..<dh { qbar[h &* dh &+ e] = (qbar[h &* dh &+ e] + bK[h &* dh &+ e] * lsum[h]) * scale }
                product(1, D, dh, mat(qbar + h &* dh, dh), wQ.headT(h), tmp, D)
                for i in 0..<D { qrow[i] += tmp[i] }
            }
            // abar[k] = Σ_h lbar[k, h] rk[h] + p0[k, h] rv[h] (+ qrow at t0); G[k] = its LayerNorm adjoint
            parallelFor(rows, threads: inputs.threads) { k, _ in
                withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 &* D) { t in
                    let xh = t.baseAddress!, abar = xh + D, row = G + k &* D
                    xh.update(from: row, count: D)
                    product(1, D, H2, mat(lp + k &* H2, H2), mat(r2, D), abar, D)
                    if k == t0 { for i in 0..<D { abar[i] += qrow[i] } }
                    LayerNormRule.vjp(abar, xhat: xh, s: sc[k], gain: gain, detach: detach, D, into: row)
                }
            }
        }
    }
}

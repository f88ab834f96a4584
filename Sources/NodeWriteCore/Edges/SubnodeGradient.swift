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
                let rows = q0 &+ 1
                try withScratch(Float.self, count: rows &* (D &+ 1) &+ rows &* dh &+ 3 &* D &+ dh, "the subnode gradient") {
                    (s) throws(NodeWriteError) in
                    let xhat = s, sc = s + rows &* D, kh = sc + rows, a = kh + rows &* dh, abar = a + D, vec = abar + D
                    let eps = inputs.eps
                    parallelFor(rows, threads: inputs.threads) { r, _ in sc[r] = LayerNormRule.stats(x + r &* D, D, eps: eps, xhat: xhat + r &* D) }
                    fillZeros(G, T &* D, threads: inputs.threads)
                    if node.subnode == .query {
                        // kbar = k[k0] - Σ_k p[q0, k] k[k]; abar[q0] = W_Q[h0] (c kbar)
                        for r in 0..<rows {
                            LayerNormRule.apply(xhat + r &* D, D, gain: gain, bias: bias, into: a)
                            product(1, dh, D, mat(a, D), wK.head(h0), kh + r &* dh, dh)
                            for e in 0..<dh { kh[r &* dh &+ e] += bK[h0 &* dh &+ e] }
                        }
                        for e in 0..<dh {
                            var mix: Float = 0
                            for k in 0..<rows { mix += pq[k &* H &+ h0] * kh[k &* dh &+ e] }
                            vec[e] = c * (kh[k0 &* dh &+ e] - mix)
                        }
                        product(1, D, dh, mat(vec, dh), wQ.headT(h0), abar, D)
                        LayerNormRule.vjp(abar, xhat: xhat + q0 &* D, s: sc[q0], gain: gain, detach: inputs.detach, D, into: G + q0 &* D)
                    } else {
                        // abar[k] = c (δ_k,k0 - p[q0, k]) (W_K[h0] q[q0, h0]) for k <= q0
                        LayerNormRule.apply(xhat + q0 &* D, D, gain: gain, bias: bias, into: a)
                        product(1, dh, D, mat(a, D), wQ.head(h0), vec, dh)
                        for e in 0..<dh { vec[e] += bQ[h0 &* dh &+ e] }
                        let r = vec + dh
                        product(1, D, dh, mat(vec, dh), wK.headT(h0), r, D)
                        let detach = inputs.detach
                        parallelFor(rows, threads: inputs.threads) { k, _ in
                            var coef = -pq[k &* H &+ h0]
                            if k == k0 { coef += 1 }
                            let f = c * coef, row = G + k &* D
                            for i in 0..<D { row[i] = f * r[i] }
                            LayerNormRule.vjp(row, xhat: xhat + k &* D, s: sc[k], gain: gain, detach: detach, D, into: row)
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
            try mlpRow(t0: t0, into: G) { pre, _, preBar in
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
                try mlpRow(t0: t0, into: G) { pre, _, preBar in
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

    /// One row t0 through the MLP: `seed(pre, W_in, preBar)` fills the gradient at the
    /// pre-activation (d_ff) from pre[t0] (bias added); G[t0] = vjp(W_in preBar), other rows 0.
    private func mlpRow(t0: Int, into G: UnsafeMutablePointer<Float>,
                        _ seed: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws(NodeWriteError) {
        let T = tokens, F = inputs.dims.dFF
        let x = try inputs.residual(.mlp, layer, tokens: T)
        let gain = try inputs.weight(.layerNormGainPreMLP, layer), bias = try inputs.weight(.layerNormBiasPreMLP, layer)
        let wIn = try inputs.weight(.mlpToHidden, layer), bIn = try inputs.weight(.mlpInBias, layer)
        try withScratch(Float.self, count: 3 &* D &+ 2 &* F, "the subnode gradient") { (s) throws(NodeWriteError) in
            let xhat = s, a = s + D, abar = s + 2 &* D, pre = s + 3 &* D, preBar = pre + F
            let sc = LayerNormRule.stats(x + t0 &* D, D, eps: inputs.eps, xhat: xhat)
            LayerNormRule.apply(xhat, D, gain: gain, bias: bias, into: a)
            product(1, F, D, mat(a, D), mat(wIn, F), pre, F)
            for n in 0..<F { pre[n] += bIn[n] }
            seed(pre, wIn, preBar)
            product(1, D, F, mat(preBar, F), mat(wIn, 1, F), abar, D)
            fillZeros(G, T &* D, threads: inputs.threads)
            LayerNormRule.vjp(abar, xhat: xhat, s: sc, gain: gain, detach: inputs.detach, D, into: G + t0 &* D)
        }
    }

    /// The gradient at the residual before attention of <c · ob, out[t0]>, out the attention
    /// layer's output before its bias, with Q, K and V live: rows <= t0.
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
        let count = rows &* (3 &* D &+ 1) &+ 2 &* D &+ 4 &* HD &+ 2 &* rows &* H &+ 2 &* H &* D &+ 2 &* H &+ H &* D
        try withScratch(Float.self, count: count, "the subnode gradient") { (s) throws(NodeWriteError) in
            let xhat = s, a = xhat + rows &* D, sc = a + rows &* D, obc = sc + rows, tmp = obc + D
            let zbar = tmp + D, q = zbar + HD, qbar = q + HD, tmpH = qbar + HD
            let lbar = tmpH + HD, p0 = lbar + rows &* H, rk = p0 + rows &* H, rv = rk + H &* D
            let lsum = rv + H &* D, bkq = lsum + H, m = bkq + H, vpart = m + H &* D
            let eps = inputs.eps, detach = inputs.detach
            parallelFor(rows, threads: inputs.threads) { r, _ in
                sc[r] = LayerNormRule.stats(x + r &* D, D, eps: eps, xhat: xhat + r &* D)
                LayerNormRule.apply(xhat + r &* D, D, gain: gain, bias: bias, into: a + r &* D)
            }
            for i in 0..<D { obc[i] = ob[i] * c }
            // zbar[h] = W_O[h] ob (the gradient at v_out[t0]); q[t0]
            product(1, HD, D, mat(obc, D), mat(wO, 1, D), zbar, HD)
            for h in 0..<H {
                product(1, dh, D, mat(a + t0 &* D, D), wQ.head(h), q + h &* dh, dh)
                for e in 0..<dh { q[h &* dh &+ e] += bQ[h &* dh &+ e] }
            }
            // lbar[k, h] = p0 (pbar - Σ p0 pbar), pbar[k, h] = zbar[h] · v[k, h]
            for h in 0..<H {
                var sum: Float = 0
                for k in 0..<rows {
                    let pk = p[t0 &* TH &+ k &* H &+ h]
                    p0[k &* H &+ h] = pk
                    let pb = dot(zbar + h &* dh, v + (k &* H &+ h) &* dh, dh)
                    lbar[k &* H &+ h] = pb
                    sum += pk * pb
                }
                var ls: Float = 0
                for k in 0..<rows { let i = k &* H &+ h; lbar[i] = p0[i] * (lbar[i] - sum); ls += lbar[i] }
                lsum[h] = ls
                // rk[h] = scale · W_K[h] q[t0, h]; rv[h] = W_V[h] zbar[h]
                product(1, D, dh, mat(q + h &* dh, dh), wK.headT(h), rk + h &* D, D)
                for i in 0..<D { rk[h &* D &+ i] *= scale }
                product(1, D, dh, mat(zbar + h &* dh, dh), wV.headT(h), rv + h &* D, D)
                _ = bkq
            }
            // abar[k] = Σ_h lbar[k, h] rk[h] + p0[k, h] rv[h]
            fillZeros(G, T &* D, threads: inputs.threads)
            product(rows, D, H, mat(lbar, H), mat(rk, D), G, D)
            product(rows, D, H, mat(p0, H), mat(rv, D), vpart, D)
            for i in 0..<(rows &* D) { G[i] += vpart[i] }
            // qbar[h] = scale (Σ_k lbar[k, h] A[k] W_K[h] + b_K[h] Σ_k lbar[k, h]); abar[t0] += Σ_h W_Q[h] qbar[h]
            product(H, D, rows, mat(lbar, 1, H), mat(a, D), m, D)
            for h in 0..<H {
                product(1, dh, D, mat(m + h &* D, D), wK.head(h), qbar + h &* dh, dh)
                for e in 0..<dh { qbar[h &* dh &+ e] = (qbar[h &* dh &+ e] + bK[h &* dh &+ e] * lsum[h]) * scale }
                product(1, D, dh, mat(qbar + h &* dh, dh), wQ.headT(h), tmp, D)
                for i in 0..<D { G[t0 &* D &+ i] += tmp[i] }
            }
            _ = tmpH
            parallelFor(rows, threads: inputs.threads) { r, _ in
                let row = G + r &* D
                LayerNormRule.vjp(row, xhat: xhat + r &* D, s: sc[r], gain: gain, detach: detach, D, into: row)
            }
        }
    }
}

/// One residual row through the MLP's input side, shared by the MLP-side in-edges (the tangent
/// through the GELU, then into neurons or an autoencoder on mlp_post_act) and the MLP-side
/// subnode gradients (the adjoint back through the same chain): the LayerNorm of row t (xhat
/// and s) and the pre-activation pre = LN(x[t]) W_in + b_in.
struct MLPRow {
    let inputs: EdgeInputs
    let layer: Int
    let tokens: Int

    var D: Int { inputs.dims.dModel }
    var F: Int { inputs.dims.dFF }

    /// Scratch floats `pre(t:into:)` needs: xhat (d_model), the LayerNorm output (d_model) and pre (d_ff).
    var scratchCount: Int { 2 &* D &+ F }

    /// xhat (scratch), pre (scratch + 2·d_model, bias added) of row t; returns the LayerNorm's s.
    func pre(t: Int, scratch s: UnsafeMutablePointer<Float>) throws(NodeWriteError) -> Float {
        let x = try inputs.residual(.mlp, layer, tokens: tokens)
        let gain = try inputs.weight(.layerNormGainPreMLP, layer), bias = try inputs.weight(.layerNormBiasPreMLP, layer)
        let wIn = try inputs.weight(.mlpToHidden, layer), bIn = try inputs.weight(.mlpInBias, layer)
        let xhat = s, a = s + D, pre = s + 2 &* D
        let sc = LayerNormRule.stats(x + t &* D, D, eps: inputs.eps, xhat: xhat)
        LayerNormRule.apply(xhat, D, gain: gain, bias: bias, into: a)
        product(1, F, D, mat(a, D), mat(wIn, F), pre, F, threads: inputs.threads)
        for n in 0..<F { pre[n] += bIn[n] }
        return sc
    }

    /// The tangent of the MLP's activation at row u along the residual tangent `w` of that row:
    /// gelu'(pre[u]) · (LN'(w) W_in) (d_ff) into `row`. LN(x[u]) and LN'(w) are the two rows of
    /// one (2, d_model) product with W_in: one pass over W_in (d_model × d_ff, the call's largest
    /// read), on the call's threads.
    func tangent(u: Int, write w: UnsafePointer<Float>, into row: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let x = try inputs.residual(.mlp, layer, tokens: tokens)
        let gain = try inputs.weight(.layerNormGainPreMLP, layer), bias = try inputs.weight(.layerNormBiasPreMLP, layer)
        let wIn = try inputs.weight(.mlpToHidden, layer), bIn = try inputs.weight(.mlpInBias, layer)
        try withScratch(Float.self, count: 3 &* D &+ 2 &* F, "the MLP tangent") { (s) throws(NodeWriteError) in
            let xhat = s, a = s + D, da = s + 2 &* D, both = s + 3 &* D  // a, da: rows of one (2, D) matrix
            let sc = LayerNormRule.stats(x + u &* D, D, eps: inputs.eps, xhat: xhat)
            LayerNormRule.apply(xhat, D, gain: gain, bias: bias, into: a)
            LayerNormRule.jvp(w, xhat: xhat, s: sc, gain: gain, detach: inputs.detach, D, into: da)
            product(2, F, D, mat(a, D), mat(wIn, F), both, F, threads: inputs.threads)
            let act = inputs.activation, dPre = both + F
            for n in 0..<F { row[n] = act.derivative(both[n] + bIn[n]) * dPre[n] }
        }
    }

    /// The adjoint: G[t0] = LN'ᵀ(W_in preBar) with preBar = `seed(pre)` (the gradient at the
    /// pre-activation, d_ff), every other row of G (T × d_model) zero.
    func gradient(t0: Int, into G: UnsafeMutablePointer<Float>,
                  _ seed: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws(NodeWriteError) {
        let gain = try inputs.weight(.layerNormGainPreMLP, layer), wIn = try inputs.weight(.mlpToHidden, layer)
        try withScratch(Float.self, count: scratchCount &+ F &+ D, "the subnode gradient") { (s) throws(NodeWriteError) in
            let xhat = s, pre = s + 2 &* D, preBar = s + scratchCount, abar = preBar + F
            let sc = try self.pre(t: t0, scratch: s)
            seed(pre, preBar)
            product(1, D, F, mat(preBar, F), mat(wIn, 1, F), abar, D, threads: inputs.threads)
            fillZeros(G, tokens &* D, threads: inputs.threads)
            LayerNormRule.vjp(abar, xhat: xhat, s: sc, gain: gain, detach: inputs.detach, D, into: G + t0 &* D)
        }
    }
}

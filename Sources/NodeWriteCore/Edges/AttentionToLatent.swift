import _NodeWriteKernels

/// Attention's writes projected onto an attention-autoencoder latent's gradient at its input,
/// D[t] = [z[t, l] > 0] · encoder[l]. Every live row of D is the same vector e = encoder[l], so
/// (v[k, h] @ W_O[h]) · D[q] = [z[q, l] > 0] · f[k, h] with f[k, h] = v[k, h] · (W_O[h] e): one
/// (T, heads) table, and each output pair is p[q, k, h] · f[k, h] (summed over heads where
/// asked). The batched forms take every latent: M[k, h, j] = v[k, h] · (W_O[h] encoder[j]), in
/// chunks of latents, then Σ_h p[q, k, h] M[k, h, j] masked by z[q, j] > 0. Nothing of size
/// (T, T, heads, d_head) or (T, T, heads, d_model) is formed.
struct AttentionToLatent {
    let inputs: EdgeInputs
    let layer: Int
    let tokens: Int
    let threads: Int

    var D: Int { inputs.dims.dModel }
    var H: Int { inputs.dims.nHeads }
    var dh: Int { inputs.dims.dHead }

    /// The attention autoencoder of the layer (by node type, as TDB asks for it).
    func autoencoder() throws(NodeWriteError) -> EdgeAutoencoder {
        let ae = try inputs.autoencoder(.attentionAutoencoderLatent, layer)
        guard ae.input == .residual else {
            throw .unsupported("the attention autoencoder at layer \(layer) does not read the residual stream (resid_delta_attn); attention-to-latent DSTs need one that does")
        }
        return ae
    }

    /// D (T, d_model).
    func latentGradient(latent l: Int, out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let ae = try autoencoder()
        let z = try inputs.latents(ae, .forward, tokens: tokens, generic: false), enc = try inputs.encoder(ae)
        let nL = ae.latents
        for t in 0..<tokens {
            let live = z[t &* nL &+ l] > 0
            for d in 0..<D { out[t &* D &+ d] = live ? enc[l &* D &+ d] : 0 }
        }
    }

    /// The one-latent forms.
    func traced(_ form: EdgeSpec.ToLatent, latent l: Int, out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let T = tokens, TH = T &* H, HD = H &* dh
        let ae = try autoencoder()
        let z = try inputs.latents(ae, .forward, tokens: T, generic: false), enc = try inputs.encoder(ae)
        let nL = ae.latents
        let wO = try inputs.weight(.attnToResidual, layer)
        let perToken = form == .perSequenceToken
        let p: UnsafePointer<Float>? = perToken ? nil : try inputs.activation(.attnQKProbs, layer, .forward, [T, T, H])
        let v = perToken ? try inputs.activation(.attnVOut, layer, .forward, [T, H, dh])
                         : try inputs.activation(.attnValue, layer, .forward, [T, H, dh])
        try withScratch(Float.self, count: HD &+ TH, "attention to a latent") { (s) throws(NodeWriteError) in
            let gh = s, f = s + HD
            // gh[h] = W_O[h] e; f[k, h] = v[k, h] · gh[h] (v_out for the per-sequence-token form)
            product(1, HD, D, mat(enc + l &* D, D), mat(wO, 1, D), gh, HD)
            parallelFor((T &+ 63) / 64, threads: threads) { b, _ in
                for k in (b &* 64)..<min(T, b &* 64 &+ 64) {
                    for h in 0..<H { f[k &* H &+ h] = dot(v + (k &* H &+ h) &* dh, gh + h &* dh, dh) }
                }
            }
            let live = { (q: Int) -> Bool in z[q &* nL &+ l] > 0 }
            switch form {
            case .perSequenceToken:
                for q in 0..<T { for h in 0..<H { out[q &* H &+ h] = live(q) ? f[q &* H &+ h] : 0 } }
            case .pairs:
                let p = p.unsafelyUnwrapped
                parallelFor(T, threads: threads) { q, _ in
                    let o = out + q &* TH, pq = p + q &* TH
                    if !live(q) { o.update(repeating: 0, count: TH); return }
                    for i in 0..<((q &+ 1) &* H) { o[i] = pq[i] * f[i] }
                    (o + (q &+ 1) &* H).update(repeating: 0, count: (T &- q &- 1) &* H)
                }
            case .summedOverHeads, .flattenedSummedOverHeads:
                let p = p.unsafelyUnwrapped, flat = form == .flattenedSummedOverHeads
                parallelFor(T, threads: threads) { q, _ in
                    let o = out + (flat ? pairRow(q) : q &* T), pq = p + q &* TH
                    let n = flat ? q &+ 1 : T
                    if !live(q) { o.update(repeating: 0, count: n); return }
                    for k in 0...q {
                        var sum: Float = 0
                        for h in 0..<H { sum += pq[k &* H &+ h] * f[k &* H &+ h] }
                        o[k] = sum
                    }
                    if !flat { (o + (q &+ 1)).update(repeating: 0, count: T &- q &- 1) }
                }
            default: break
            }
        }
    }

    /// Queries per tile of the batched flattened form: each key's block of M (heads × latents) is
    /// read once per tile and used by its queries.
    static let pairQueryBlock = 16

    /// The batched forms: every latent.
    func batched(_ form: EdgeSpec.ToLatent, out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let T = tokens, TH = T &* H, HD = H &* dh
        let ae = try autoencoder()
        let z = try inputs.latents(ae, .forward, tokens: T, generic: false), enc = try inputs.encoder(ae)
        let nL = ae.latents
        let wO = try inputs.weight(.attnToResidual, layer)
        let perToken = form == .perSequenceTokenBatched
        let p: UnsafePointer<Float>? = perToken ? nil : try inputs.activation(.attnQKProbs, layer, .forward, [T, T, H])
        let v = perToken ? try inputs.activation(.attnVOut, layer, .forward, [T, H, dh])
                         : try inputs.activation(.attnValue, layer, .forward, [T, H, dh])
        // Latents per chunk: E (heads · d_head × c) and, for pairs, M (T × heads × c) in 32 MB.
        let perLatent = HD &+ (perToken ? 0 : TH)
        // A chunk short of every latent is a multiple of 16 latents, so that (with rows of whole
        // cache lines) each chunk's part of a row is whole 64-byte lines: streamed, never a line
        // half-written by each of two chunks.
        var chunk = max(1, min(nL, (8 << 20) / max(1, perLatent)))
        if chunk < nL { chunk = max(16, chunk / 16 * 16) }
        try withScratch(Float.self, count: chunk &* perLatent, "attention to every latent") { (s) throws(NodeWriteError) in
            let e = s, m = s + HD &* chunk
            var j0 = 0
            while j0 < nL {
                let c = min(chunk, nL &- j0)
                // E[h] = W_O[h] encoder[j0 ..< j0 + c]ᵀ (d_head × c), row (h, e) of HD × c
                product(HD, c, D, mat(wO, D), mat(enc + j0 &* D, 1, D), e, c, threads: threads)
                if perToken {
                    for h in 0..<H {
                        product(T, c, dh, mat(v + h &* dh, HD), mat(e + h &* dh &* c, c), out + (h &* nL &+ j0), H &* nL, threads: threads)
                    }
                    parallelFor(T, threads: threads) { q, _ in
                        for j in 0..<c where !(z[q &* nL &+ j0 &+ j] > 0) {
                            for h in 0..<H { out[(q &* H &+ h) &* nL &+ j0 &+ j] = 0 }
                        }
                    }
                } else {
                    for h in 0..<H {
                        product(T, c, dh, mat(v + h &* dh, HD), mat(e + h &* dh &* c, c), m + h &* c, H &* c, threads: threads)
                    }
                    // Tiles of queries: a key's block of M (heads × c floats) is read by every
                    // query of the tile at once, not streamed from memory (or even L2) once per query
                    // (M is up to 32 MB; T = 4096: 67 GB of reads untiled).
                    // Per key of a tile, one call of the kernel for the tile's queries q >= k: the
                    // key's (heads × c) block of M is loaded once for all of them (SIMD over latents,
                    // each element the FMA chain over heads in head order); the output streamed
                    // when it is large.
                    let p = p.unsafelyUnwrapped, qBlock = Self.pairQueryBlock
                    let (bytes, huge) = pairRow(T).multipliedReportingOverflow(by: nL &* 4)
                    let stream: Int32 = huge || bytes >= Kernels.streamMinBytes ? 1 : 0
                    parallelFor((T &+ qBlock &- 1) / qBlock, threads: threads) { b, _ in
                        let qa = b &* qBlock, qb = min(T, qa &+ qBlock)
                        withUnsafeTemporaryAllocation(of: Int64.self, capacity: qBlock) { off in
                            for k in 0..<qb {
                                let q0 = max(qa, k)
                                for q in q0..<qb { off[q &- q0] = Int64((pairRow(q) &+ k) &* nL &+ j0) }
                                nwk_pair_latents(Int64(qb &- q0), Int32(H), Int64(c), p + (q0 &* TH &+ k &* H), Int64(TH),
                                                 m + k &* H &* c, Int64(c), z + (q0 &* nL &+ j0), Int64(nL), out,
                                                 off.baseAddress.unsafelyUnwrapped, stream)
                            }
                        }
                    }
                }
                j0 &+= c
            }
        }
    }
}

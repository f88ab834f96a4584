/// Out-edges: every upstream node's write of one layer projected onto G, the downstream
/// subnode's gradient at the residual: the write family's projection DSTs with direction G
/// (`DerivedScalarRun`), so an out-edge has the bits of nw_derive with that direction.
extension DerivedScalarRun {
    /// A write-family projection of `form`'s nodes onto a (T, d_model) direction.
    init(projecting form: LayerForm, layout: DerivedScalarSpec.AttentionLayout, dst: DerivedScalar,
         direction: TensorView, threads: Int, outputZeroed: Bool) throws(NodeWriteError) {
        let tokens = form.tokens, width = form.source.width
        self.dst = dst
        switch layout {
        case .none: shape = [tokens, width]
        case .unflattened: shape = [tokens, tokens, width]
        case .flattened: shape = [pairRow(tokens), width]
        case .perSequenceToken: shape = [tokens, width]
        }
        count = shape.reduce(1, *)
        input = .nodes(form, layout)
        self.direction = try Direction(direction, dModel: form.dModel, tokens: tokens)
        self.threads = max(1, threads)
        self.outputZeroed = outputZeroed
    }
}

struct OutEdges {
    let inputs: EdgeInputs
    let tokens: Int

    /// The layer form of the upstream nodes of `upstream` at `layer` (nil for token embeddings),
    /// with the side they write from.
    func form(_ upstream: EdgeSpec.Upstream, layer: Int) throws(NodeWriteError) -> (LayerForm, Side)? {
        switch upstream {
        case .attention:
            let form = try NodeSource(model: inputs.model, nodeType: .attentionHead, layer: layer).resolve(inputs.store)
            try checkTokens(form, "attn.qk_probs", layer)
            guard form.scalars.shape[1] == tokens else {
                throw .shapeMismatch("activation attn.qk_probs at layer \(layer): shape \(form.scalars.shapeArray) must be (T, T, n_heads); its keys disagree with its \(form.tokens) queries")
            }
            return (form, .attention)
        case .mlp:
            let form = try NodeSource(model: inputs.model, nodeType: .mlpNeuron, layer: layer).resolve(inputs.store)
            try checkTokens(form, "mlp.post_act", layer)
            return (form, .mlp)
        case .autoencoder:
            guard let type = try inputs.singleAutoencoderType("online_autoencoder_out_edge_attribution") else {
                throw .missingInput("online_autoencoder_out_edge_attribution needs an autoencoder on the model; none is set")
            }
            let ae = try inputs.autoencoder(type, layer)
            let source = try NodeSource(model: inputs.model, nodeType: ae.nodeType, layer: layer)
            let location: ActivationLocation = inputs.store[.onlineAutoencoderLatent, layer, .forward] != nil
                ? .onlineAutoencoderLatent : ae.nodeType.kind.activations[0]
            let z = try inputs.store.require(location, layer: layer)
            try inputs.check(z, location, layer, .forward, [tokens, ae.latents])
            return (LayerForm(source: source, scalars: z, values: nil), ae.side)
        case .tokens:
            return nil
        }
    }

    private func checkTokens(_ form: LayerForm, _ what: String, _ layer: Int) throws(NodeWriteError) {
        guard form.tokens == tokens else {
            throw inputs.tokensDisagree("activation \(what) at layer \(layer)", form.tokens)
        }
    }

    /// token_out_edge_attribution: out[t] = resid.post_emb[t] · G[t].
    func tokens(_ G: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let D = inputs.dims.dModel
        let emb = try inputs.activation(.residPostEmb, Model.noLayer, .forward, [tokens, D])
        for t in 0..<tokens { out[t] = dot(emb + t &* D, G + t &* D, D) }
    }
}

/// What an edge or attribution DST is: the row of `DerivedScalarSpec.table` for TDB's
/// in-edges, out-edges, act-times-grad and attention-to-latent derived scalars. The shape rule,
/// what the node argument is and what it reads are data here; `EdgeRun` follows them.
package struct EdgeSpec: Sendable {
    /// What is computed.
    package enum Role: Sendable, Equatable {
        /// d act_downstream along the upstream node's write, times the downstream loss gradient.
        case inEdge(Downstream)
        /// G: the gradient at the residual before a downstream subnode of act[idx] · g[idx].
        case subnodeGradient
        /// Every upstream node's write projected onto G (per upstream layer).
        case outEdge(Upstream)
        /// An activation times its loss gradient; nil: the single autoencoder's latents.
        case actTimesGrad(ActivationLocation?, DerivedScalarSpec.AttentionLayout)
        /// D: the gradient of Σ_t z[t, latent] at the attention autoencoder's input.
        case latentGradient
        /// Attention's writes projected onto D.
        case toLatent(ToLatent)
    }

    package enum Downstream: Sendable { case query, key, value, mlp, autoencoder }
    package enum Upstream: Sendable { case attention, mlp, autoencoder, tokens }
    package enum ToLatent: Sendable {
        case pairs, summedOverHeads, flattenedSummedOverHeads, perSequenceToken
        case flattenedSummedOverHeadsBatched, perSequenceTokenBatched
    }

    /// What the call's node argument is.
    package enum NodeArgument: Sendable {
        /// None is taken.
        case none
        /// The upstream node (any node type; an attention head without a subnode).
        case upstream
        /// The downstream subnode (an attention head with Q, K or V; an MLP neuron; a latent).
        case subnode
        /// The trace latent: an attention_autoencoder_latent (token NW_INDEX_NONE, latent).
        case traceLatent
    }

    package let role: Role
    package let node: NodeArgument
    /// The output's shape rule.
    package let dims: [Dim]
    package let layout: DerivedScalarSpec.Layout
    /// Whether it is computed at a layer (token_out_edge_attribution and token_attribution are not).
    package let hasLayer: Bool
    /// The node type whose nodes its values are per (nil: residual rows or tokens).
    package let nodeType: NodeType?
    /// The activations it reads (forward or backward pass) at its layer or the one before: at
    /// most four, the ones that say what it is (nw_dst_info holds four).
    package let reads: [ActivationLocation]
    /// TDB asks for *the* single loaded autoencoder: with more than one it fails.
    package let singleAutoencoder: Bool

    package var quantity: DerivedScalarSpec.Quantity {
        switch role {
        case .inEdge: .inEdge
        case .outEdge: .outEdge
        case .subnodeGradient, .latentGradient: .gradient
        case .actTimesGrad: .actTimesGrad
        case .toLatent: .toLatent
        }
    }

    /// The table row of an edge DST.
    static func row(_ dst: DerivedScalar) -> DerivedScalarSpec {
        let (name, e) = rows[Int(dst.rawValue) - firstRawValue]
        return DerivedScalarSpec(name: name, quantity: e.quantity, subject: .edge(e))
    }

    static let firstRawValue = Int(DerivedScalar.attnQueryInEdgeAttribution.rawValue)

    private static let residualBefore: [ActivationLocation] = [.residPostEmb, .residPostMLP]

    /// Rows 18 ... 42, in order.
    private static let rows: [(StaticString, EdgeSpec)] = {
        typealias E = EdgeSpec
        let attnIn: [ActivationLocation] = residualBefore + [.attnQKProbs]  // and the read side of the layer
        func inEdge(_ d: Downstream, _ dims: [Dim], _ layout: DerivedScalarSpec.Layout, _ type: NodeType,
                    _ reads: [ActivationLocation]) -> E {
            E(role: .inEdge(d), node: .upstream, dims: dims, layout: layout, hasLayer: true, nodeType: type,
              reads: reads, singleAutoencoder: true)
        }
        func outEdge(_ u: Upstream, _ dims: [Dim], _ layout: DerivedScalarSpec.Layout, hasLayer: Bool = true,
                     _ type: NodeType?, _ reads: [ActivationLocation]) -> E {
            E(role: .outEdge(u), node: .subnode, dims: dims, layout: layout, hasLayer: hasLayer, nodeType: type,
              reads: reads, singleAutoencoder: true)
        }
        func times(_ a: ActivationLocation?, _ l: DerivedScalarSpec.AttentionLayout, _ dims: [Dim],
                   _ layout: DerivedScalarSpec.Layout, hasLayer: Bool = true, _ type: NodeType?) -> E {
            E(role: .actTimesGrad(a, l), node: .none, dims: dims, layout: layout, hasLayer: hasLayer, nodeType: type,
              reads: a.map { [$0] } ?? [.onlineAutoencoderLatent], singleAutoencoder: a == nil)
        }
        func toLatent(_ t: ToLatent, _ dims: [Dim], _ layout: DerivedScalarSpec.Layout, node: NodeArgument = .traceLatent,
                      single: Bool = false, _ reads: [ActivationLocation]) -> E {
            E(role: .toLatent(t), node: node, dims: dims, layout: layout, hasLayer: true,
              nodeType: node == .none ? .attentionAutoencoderLatent : .attentionHead,
              reads: reads + [.onlineAttentionAutoencoderLatent], singleAutoencoder: single)
        }
        let pv: [ActivationLocation] = [.attnQKProbs, .attnValue]
        return [
            ("attn_query_in_edge_attribution", inEdge(.query, [.tokens, .tokens, .heads], .unflattened, .attentionHead, attnIn)),
            ("attn_key_in_edge_attribution", inEdge(.key, [.tokens, .tokens, .heads], .unflattened, .attentionHead, attnIn)),
            ("attn_value_in_edge_attribution",
             inEdge(.value, [.tokens, .tokens, .heads], .unflattened, .attentionHead, attnIn + [.attnVOut])),
            ("mlp_in_edge_attribution", inEdge(.mlp, [.tokens, .dFF], .nodes, .mlpNeuron, [.residPostAttn, .mlpPostAct])),
            ("online_autoencoder_in_edge_attribution",
             inEdge(.autoencoder, [.tokens, .latents], .nodes, .autoencoderLatent,
                    [.residPostMLP, .residPostAttn, .attnQKProbs, .onlineAutoencoderLatent])),
            ("grad_of_single_subnode_attribution",
             E(role: .subnodeGradient, node: .subnode, dims: [.tokens, .dModel], layout: .residual, hasLayer: true,
               nodeType: nil, reads: [.residPostMLP, .residPostAttn, .attnQKProbs, .mlpPostAct],
               singleAutoencoder: true)),
            ("attn_out_edge_attribution", outEdge(.attention, [.tokens, .tokens, .heads], .unflattened, .attentionHead, pv)),
            ("mlp_out_edge_attribution", outEdge(.mlp, [.tokens, .dFF], .nodes, .mlpNeuron, [.mlpPostAct])),
            ("online_autoencoder_out_edge_attribution",
             outEdge(.autoencoder, [.tokens, .latents], .nodes, .autoencoderLatent, [.onlineAutoencoderLatent])),
            ("token_out_edge_attribution", outEdge(.tokens, [.tokens, .one], .tokens, hasLayer: false, nil, [.residPostEmb])),
            ("mlp_act_times_grad", times(.mlpPostAct, .none, [.tokens, .dFF], .nodes, .mlpNeuron)),
            ("unflattened_attn_act_times_grad",
             times(.attnQKProbs, .unflattened, [.tokens, .tokens, .heads], .unflattened, .attentionHead)),
            ("attn_act_times_grad", times(.attnQKProbs, .flattened, [.tokenPairs, .heads], .flattened, .attentionHead)),
            ("attn_act_times_grad_per_sequence_token",
             times(.attnQKProbs, .perSequenceToken, [.tokens, .heads], .perSequenceToken, .attentionHead)),
            ("token_attribution", times(.residPostEmb, .none, [.tokens, .one], .tokens, hasLayer: false, nil)),
            ("online_autoencoder_act_times_grad", times(nil, .none, [.tokens, .latents], .nodes, .autoencoderLatent)),
            ("online_mlp_autoencoder_act_times_grad",
             times(.onlineMLPAutoencoderLatent, .none, [.tokens, .latents], .nodes, .mlpAutoencoderLatent)),
            ("online_attention_autoencoder_act_times_grad",
             times(.onlineAttentionAutoencoderLatent, .none, [.tokens, .latents], .nodes, .attentionAutoencoderLatent)),
            ("autoencoder_latent_grad_wrt_residual_input",
             E(role: .latentGradient, node: .traceLatent, dims: [.tokens, .dModel], layout: .residual, hasLayer: true,
               nodeType: nil, reads: [.onlineAttentionAutoencoderLatent], singleAutoencoder: true)),
            ("attn_write_to_latent", toLatent(.pairs, [.tokens, .tokens, .heads], .unflattened, pv)),
            ("attn_write_to_latent_summed_over_heads",
             toLatent(.summedOverHeads, [.tokens, .tokens, .one], .unflattened, pv)),
            ("flattened_attn_write_to_latent_summed_over_heads",
             toLatent(.flattenedSummedOverHeads, [.tokenPairs, .one], .flattened, pv)),
            ("attn_write_to_latent_per_sequence_token",
             toLatent(.perSequenceToken, [.tokens, .heads], .perSequenceToken, single: true, [.attnVOut])),
            ("flattened_attn_write_to_latent_summed_over_heads_batched",
             toLatent(.flattenedSummedOverHeadsBatched, [.tokenPairs, .latents], .flattened, node: .none, pv)),
            ("attn_write_to_latent_per_sequence_token_batched",
             toLatent(.perSequenceTokenBatched, [.tokens, .heads, .latents], .perSequenceToken, node: .none, [.attnVOut])),
        ]
    }()
}

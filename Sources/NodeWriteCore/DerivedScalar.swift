/// TDB's residual-write derived scalars (`DerivedScalarType` values) that nodewrite derives
/// for every node of a layer. Raw values are the C ABI's `nw_dst`.
package enum DerivedScalar: Int32, TDBNamed {
    case mlpWriteNorm = 0
    case mlpWriteToFinalResidualGrad = 1
    case unflattenedAttnWriteNorm = 2
    case unflattenedAttnWriteToFinalResidualGrad = 3
    case attnWriteNorm = 4
    case attnWriteToFinalResidualGrad = 5
    case attnWriteNormPerSequenceToken = 6
    case attnWriteToFinalResidualGradPerSequenceToken = 7
    case onlineAutoencoderWriteNorm = 8
    case onlineMLPAutoencoderWriteNorm = 9
    case onlineAttentionAutoencoderWriteNorm = 10
    case onlineAutoencoderWriteToFinalResidualGrad = 11
    case onlineMLPAutoencoderWriteToFinalResidualGrad = 12
    case onlineAttentionAutoencoderWriteToFinalResidualGrad = 13
    case mlpLayerWriteNorm = 14
    case attnLayerWriteNorm = 15
    case mlpLayerWriteToFinalResidualGrad = 16
    case attnLayerWriteToFinalResidualGrad = 17
    // Edges and attributions (EdgeSpec.swift has their rows).
    case attnQueryInEdgeAttribution = 18
    case attnKeyInEdgeAttribution = 19
    case attnValueInEdgeAttribution = 20
    case mlpInEdgeAttribution = 21
    case onlineAutoencoderInEdgeAttribution = 22
    case gradOfSingleSubnodeAttribution = 23
    case attnOutEdgeAttribution = 24
    case mlpOutEdgeAttribution = 25
    case onlineAutoencoderOutEdgeAttribution = 26
    case tokenOutEdgeAttribution = 27
    case mlpActTimesGrad = 28
    case unflattenedAttnActTimesGrad = 29
    case attnActTimesGrad = 30
    case attnActTimesGradPerSequenceToken = 31
    case tokenAttribution = 32
    case onlineAutoencoderActTimesGrad = 33
    case onlineMLPAutoencoderActTimesGrad = 34
    case onlineAttentionAutoencoderActTimesGrad = 35
    case autoencoderLatentGradWrtResidualInput = 36
    case attnWriteToLatent = 37
    case attnWriteToLatentSummedOverHeads = 38
    case flattenedAttnWriteToLatentSummedOverHeads = 39
    case attnWriteToLatentPerSequenceToken = 40
    case flattenedAttnWriteToLatentSummedOverHeadsBatched = 41
    case attnWriteToLatentPerSequenceTokenBatched = 42

    package var name: StaticString { spec.name }
    package var spec: DerivedScalarSpec { DerivedScalarSpec.table[Int(rawValue)] }
}

/// What a derived scalar is: the one table the rules of every DST follow from.
package struct DerivedScalarSpec: Sendable {
    /// The quantity of each write. Raw values are the C ABI's `nw_dst_quantity`.
    package enum Quantity: Int32, Sendable {
        /// s · ‖b @ B‖ (signed like s, as TDB defines it).
        case norm = 0
        /// w · g[t], t the token the write lands on.
        case projection = 1
        /// An in-edge: the derivative of a downstream activation along an upstream node's write, times its loss gradient.
        case inEdge = 2
        /// An out-edge: an upstream node's write projected onto a downstream subnode's gradient.
        case outEdge = 3
        /// A gradient at the residual stream (T, d_model).
        case gradient = 4
        /// An activation times its loss gradient.
        case actTimesGrad = 5
        /// Attention's write projected onto an autoencoder latent's gradient at its input.
        case toLatent = 6
    }

    /// Whose writes, and how the output is laid out.
    package enum Subject: Sendable {
        /// Every node of a node type: (T, width) for neurons and latents, or the attention
        /// layouts below for heads.
        case nodes(NodeType, AttentionLayout)
        /// The whole layer's write, read from a resid.delta activation: (T, 1).
        case layer(ActivationLocation)
        /// An edge or attribution DST (EdgeSpec.swift): its own shape rule and reads.
        case edge(EdgeSpec)
    }

    /// How (query, key, head) values are laid out.
    package enum AttentionLayout: Sendable {
        /// Not attention: (T, width).
        case none
        /// (T, T, heads); k > q is 0.
        case unflattened
        /// (T(T+1)/2, heads), row q(q+1)/2 + k.
        case flattened
        /// (T, heads): the head's write summed over keys.
        case perSequenceToken
    }

    package let name: StaticString
    package let quantity: Quantity
    package let subject: Subject

    /// The output layouts of the C ABI (`nw_dst_layout`), which subject and attention layout give.
    package enum Layout: Int32, Sendable {
        case nodes = 0, unflattened = 1, flattened = 2, perSequenceToken = 3, layer = 4
        /// (T, d_model): a residual-stream vector per token.
        case residual = 5
        /// (T, 1) with no layer: one value per token.
        case tokens = 6
    }

    package var layout: Layout {
        switch subject {
        case .edge(let e): e.layout
        case .layer: .layer
        case .nodes(_, .none): .nodes
        case .nodes(_, .unflattened): .unflattened
        case .nodes(_, .flattened): .flattened
        case .nodes(_, .perSequenceToken): .perSequenceToken
        }
    }

    /// The output's shape rule.
    package var dims: [Dim] {
        switch subject {
        case .edge(let e): e.dims
        case .layer: [.tokens, .one]
        case .nodes(let type, .none): [.tokens, type.kind.width]
        case .nodes(_, .unflattened): [.tokens, .tokens, .heads]
        case .nodes(_, .flattened): [.tokenPairs, .heads]
        case .nodes(_, .perSequenceToken): [.tokens, .heads]
        }
    }

    /// The node type whose nodes it covers (nil for a whole layer's write).
    package var nodeType: NodeType? {
        switch subject {
        case .nodes(let type, _): type
        case .edge(let e): e.nodeType
        case .layer: nil
        }
    }

    /// The activations it reads at its layer.
    package var activations: [ActivationLocation] {
        switch subject {
        case .nodes(let type, _): type.kind.activations
        case .layer(let location): [location]
        case .edge(let e): e.reads
        }
    }

    /// Whether a direction is required (and none may be given otherwise).
    package var needsDirection: Bool { quantity == .projection }

    /// Whether it is computed at a layer (all but token_out_edge_attribution and token_attribution).
    package var hasLayer: Bool {
        if case .edge(let e) = subject { e.hasLayer } else { true }
    }

    /// The edge DST's row, nil for the write family.
    package var edge: EdgeSpec? {
        if case .edge(let e) = subject { e } else { nil }
    }

    static let table: [DerivedScalarSpec] = DerivedScalar.allCases.map { dst in
        switch dst {
        case .mlpWriteNorm: .init(name: "mlp_write_norm", quantity: .norm, subject: .nodes(.mlpNeuron, .none))
        case .mlpWriteToFinalResidualGrad:
            .init(name: "mlp_write_to_final_residual_grad", quantity: .projection, subject: .nodes(.mlpNeuron, .none))
        case .unflattenedAttnWriteNorm:
            .init(name: "unflattened_attn_write_norm", quantity: .norm, subject: .nodes(.attentionHead, .unflattened))
        case .unflattenedAttnWriteToFinalResidualGrad:
            .init(name: "unflattened_attn_write_to_final_residual_grad", quantity: .projection,
                  subject: .nodes(.attentionHead, .unflattened))
        case .attnWriteNorm: .init(name: "attn_write_norm", quantity: .norm, subject: .nodes(.attentionHead, .flattened))
        case .attnWriteToFinalResidualGrad:
            .init(name: "attn_write_to_final_residual_grad", quantity: .projection, subject: .nodes(.attentionHead, .flattened))
        case .attnWriteNormPerSequenceToken:
            .init(name: "attn_write_norm_per_sequence_token", quantity: .norm,
                  subject: .nodes(.attentionHead, .perSequenceToken))
        case .attnWriteToFinalResidualGradPerSequenceToken:
            .init(name: "attn_write_to_final_residual_grad_per_sequence_token", quantity: .projection,
                  subject: .nodes(.attentionHead, .perSequenceToken))
        case .onlineAutoencoderWriteNorm:
            .init(name: "online_autoencoder_write_norm", quantity: .norm, subject: .nodes(.autoencoderLatent, .none))
        case .onlineMLPAutoencoderWriteNorm:
            .init(name: "online_mlp_autoencoder_write_norm", quantity: .norm, subject: .nodes(.mlpAutoencoderLatent, .none))
        case .onlineAttentionAutoencoderWriteNorm:
            .init(name: "online_attention_autoencoder_write_norm", quantity: .norm,
                  subject: .nodes(.attentionAutoencoderLatent, .none))
        case .onlineAutoencoderWriteToFinalResidualGrad:
            .init(name: "online_autoencoder_write_to_final_residual_grad", quantity: .projection,
                  subject: .nodes(.autoencoderLatent, .none))
        case .onlineMLPAutoencoderWriteToFinalResidualGrad:
            .init(name: "online_mlp_autoencoder_write_to_final_residual_grad", quantity: .projection,
                  subject: .nodes(.mlpAutoencoderLatent, .none))
        case .onlineAttentionAutoencoderWriteToFinalResidualGrad:
            .init(name: "online_attention_autoencoder_write_to_final_residual_grad", quantity: .projection,
                  subject: .nodes(.attentionAutoencoderLatent, .none))
        case .mlpLayerWriteNorm: .init(name: "mlp_layer_write_norm", quantity: .norm, subject: .layer(.residDeltaMLP))
        case .attnLayerWriteNorm: .init(name: "attn_layer_write_norm", quantity: .norm, subject: .layer(.residDeltaAttn))
        case .mlpLayerWriteToFinalResidualGrad:
            .init(name: "mlp_layer_write_to_final_residual_grad", quantity: .projection, subject: .layer(.residDeltaMLP))
        case .attnLayerWriteToFinalResidualGrad:
            .init(name: "attn_layer_write_to_final_residual_grad", quantity: .projection, subject: .layer(.residDeltaAttn))
        default:
            EdgeSpec.row(dst)
        }
    }
}

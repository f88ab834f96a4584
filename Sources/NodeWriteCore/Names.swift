/// TDB's names for the things a node write is made of. Raw values are the C ABI's
/// pinned enum values; `name` is TDB's string value.

/// TDB's `NodeType` values for nodes that write to the residual stream.
package enum NodeType: Int32, TDBNamed {
    case mlpNeuron = 0
    case attentionHead = 1
    case autoencoderLatent = 2
    case mlpAutoencoderLatent = 3
    case attentionAutoencoderLatent = 4

    package var name: StaticString { kind.name }
    package var indexCount: Int { kind.indexNames.count }
    package var isLatent: Bool { kind.latents }
}

/// What a node type is made of. Requirements, validation and messages follow from
/// this table; adding a node type is one row here and one case in `LayerForm.Source`.
package struct NodeKind: Sendable {
    /// TDB's `NodeType` value.
    package let name: StaticString
    /// The names of its tensor indices in TDB's order; the first is the token its write lands on.
    package let indexNames: [StaticString]
    /// The activations it reads; the first holds the node's scalar and has T as its first
    /// dimension, and its other dimensions are the node's indices.
    package let activations: [ActivationLocation]
    /// That activation's last dimension (the size of the node's last index).
    package let width: Dim
    /// The output weight it needs, or nil when its autoencoder decides (latents).
    package let weight: WeightLocation?
    /// Whether it is an autoencoder latent (needs the autoencoder set for its node type).
    package let latents: Bool
}

extension NodeType {
    /// The node type's row of the table.
    @inline(__always) package var kind: NodeKind { NodeKind.table[Int(rawValue)] }
}

extension NodeKind {
    /// The table, built once: row i is the node type of raw value i.
    static let table: [NodeKind] = NodeType.allCases.map { type in
        switch type {
        case .mlpNeuron:
            NodeKind(name: "mlp_neuron", indexNames: ["token", "neuron"], activations: [.mlpPostAct],
                     width: .dFF, weight: .mlpToResidual, latents: false)
        case .attentionHead:
            NodeKind(name: "attention_head", indexNames: ["query token", "key token", "head"],
                     activations: [.attnQKProbs, .attnValue], width: .heads,
                     weight: .attnToResidual, latents: false)
        case .autoencoderLatent:
            NodeKind(name: "autoencoder_latent", indexNames: ["token", "latent"],
                     activations: [.onlineAutoencoderLatent], width: .latents, weight: nil, latents: true)
        case .mlpAutoencoderLatent:
            NodeKind(name: "mlp_autoencoder_latent", indexNames: ["token", "latent"],
                     activations: [.onlineMLPAutoencoderLatent], width: .latents, weight: nil, latents: true)
        case .attentionAutoencoderLatent:
            NodeKind(name: "attention_autoencoder_latent", indexNames: ["token", "latent"],
                     activations: [.onlineAttentionAutoencoderLatent], width: .latents, weight: nil,
                     latents: true)
        }
    }
}

/// TDB's `ActivationLocationType` values of the raw activations nodewrite reads.
package enum ActivationLocation: Int32, TDBNamed {
    case mlpPostAct = 0
    case attnQKProbs = 1
    case attnValue = 2
    case onlineAutoencoderLatent = 3
    case onlineMLPAutoencoderLatent = 4
    case onlineAttentionAutoencoderLatent = 5
    case residDeltaMLP = 6
    case residDeltaAttn = 7
    case residPostEmb = 8
    case residPostAttn = 9
    case residPostMLP = 10
    case attnVOut = 11

    package var name: StaticString {
        switch self {
        case .mlpPostAct: "mlp.post_act"
        case .attnQKProbs: "attn.qk_probs"
        case .attnValue: "attn.v"
        case .onlineAutoencoderLatent: "online_autoencoder_latent"
        case .onlineMLPAutoencoderLatent: "online_mlp_autoencoder_latent"
        case .onlineAttentionAutoencoderLatent: "online_attention_autoencoder_latent"
        case .residDeltaMLP: "resid.delta_mlp"
        case .residDeltaAttn: "resid.delta_attn"
        case .residPostEmb: "resid.post_emb"
        case .residPostAttn: "resid.post_attn"
        case .residPostMLP: "resid.post_mlp"
        case .attnVOut: "attn.v_out"
        }
    }

    /// Its shape in TDB's layout.
    package var dims: [Dim] { Self.shapes[Int(rawValue)] }

    /// The shapes, built once (row i: raw value i), so that asking allocates nothing.
    private static let shapes: [[Dim]] = allCases.map { location in
        switch location {
        case .mlpPostAct: [.tokens, .dFF]
        case .attnQKProbs: [.tokens, .tokens, .heads]
        case .attnValue: [.tokens, .heads, .dHead]
        case .onlineAutoencoderLatent, .onlineMLPAutoencoderLatent, .onlineAttentionAutoencoderLatent: [.tokens, .latents]
        case .residDeltaMLP, .residDeltaAttn: [.tokens, .dModel]
        case .residPostEmb, .residPostAttn, .residPostMLP: [.tokens, .dModel]
        case .attnVOut: [.tokens, .heads, .dHead]
        }
    }

    /// The number of dimensions of this activation in TDB's layout.
    package var ndim: Int { dims.count }

    /// Whether it is kept per layer (all but resid.post_emb, which is put at `Model.noLayer`).
    package var hasLayer: Bool { self != .residPostEmb }

    /// The latent node type whose scalars it holds (the online_* autoencoder latents), from
    /// the node type table.
    package var latentNodeType: NodeType? {
        NodeType.allCases.first { $0.isLatent && $0.kind.activations[0] == self }
    }
}

/// TDB's `WeightLocationType` values of the weights nodewrite reads.
package enum WeightLocation: Int32, TDBNamed {
    case mlpToResidual = 0
    case attnToResidual = 1
    case unembedding = 2
    case layerNormGainFinal = 3
    case layerNormGainPreAttn = 4
    case layerNormBiasPreAttn = 5
    case layerNormGainPreMLP = 6
    case layerNormBiasPreMLP = 7
    case attnToQuery = 8
    case attnToKey = 9
    case attnToValue = 10
    case attnQueryBias = 11
    case attnKeyBias = 12
    case attnValueBias = 13
    case attnOutBias = 14
    case mlpToHidden = 15
    case mlpInBias = 16
    case mlpOutBias = 17

    package var name: StaticString {
        switch self {
        case .mlpToResidual: "mlp.to_residual"
        case .attnToResidual: "attn.to_residual"
        case .unembedding: "unembedding"
        case .layerNormGainFinal: "layer_norm_gain.final"
        case .layerNormGainPreAttn: "layer_norm_gain.pre_attn"
        case .layerNormBiasPreAttn: "layer_norm_bias.pre_attn"
        case .layerNormGainPreMLP: "layer_norm_gain.pre_mlp"
        case .layerNormBiasPreMLP: "layer_norm_bias.pre_mlp"
        case .attnToQuery: "attn.to_query"
        case .attnToKey: "attn.to_key"
        case .attnToValue: "attn.to_value"
        case .attnQueryBias: "attn.query_bias"
        case .attnKeyBias: "attn.key_bias"
        case .attnValueBias: "attn.value_bias"
        case .attnOutBias: "attn.out_bias"
        case .mlpToHidden: "mlp.to_hidden"
        case .mlpInBias: "mlp.in_bias"
        case .mlpOutBias: "mlp.out_bias"
        }
    }

    /// Its canonical shape.
    package var dims: [Dim] { Self.shapes[Int(rawValue)] }

    /// The shapes, built once (row i: raw value i), so that asking allocates nothing.
    private static let shapes: [[Dim]] = allCases.map { weight in
        switch weight {
        case .mlpToResidual: [.dFF, .dModel]
        case .attnToResidual: [.heads, .dHead, .dModel]
        case .unembedding: [.dModel, .vocab]
        case .layerNormGainFinal: [.dModel]
        case .layerNormGainPreAttn, .layerNormBiasPreAttn, .layerNormGainPreMLP, .layerNormBiasPreMLP: [.dModel]
        case .attnToQuery, .attnToKey, .attnToValue: [.heads, .dModel, .dHead]
        case .attnQueryBias, .attnKeyBias, .attnValueBias: [.heads, .dHead]
        case .attnOutBias, .mlpOutBias: [.dModel]
        case .mlpToHidden: [.dModel, .dFF]
        case .mlpInBias: [.dFF]
        }
    }

    package var ndim: Int { dims.count }

    /// Whether the weight belongs to a layer (the unembedding and the final gain do not).
    package var hasLayer: Bool { self != .unembedding && self != .layerNormGainFinal }
}

/// What an autoencoder was trained on, which decides how its decoded vector reaches
/// the residual stream.
package enum AutoencoderInput: Int32, CaseIterable, Sendable {
    /// MLP post-activations: the decoded vector goes through `mlp.to_residual`.
    case mlpPostAct = 0
    /// A residual-stream quantity: the decoded vector is the write.
    case residual = 1
    /// Attention's weighted sum of values z (heads · d_head): the decoded vector goes
    /// through `attn.to_residual`.
    case attnZ = 2

    /// Its name in the C ABI's info table.
    package var name: StaticString {
        switch self {
        case .mlpPostAct: "mlp_post_act"
        case .residual: "residual"
        case .attnZ: "attn_z"
        }
    }

    /// n_inputs, the decoder's second dimension.
    package var inputDim: Dim {
        switch self {
        case .mlpPostAct: .dFF
        case .residual: .dModel
        case .attnZ: .headChannels
        }
    }

    /// The weight the decoded vector goes through, or nil: the decoded vector is the write.
    package var weight: WeightLocation? {
        switch self {
        case .mlpPostAct: .mlpToResidual
        case .residual: nil
        case .attnZ: .attnToResidual
        }
    }

    /// TDB's `DerivedScalarType` values of what an autoencoder was trained on, and the kind
    /// each gives.
    package static let sources: [(name: StaticString, input: AutoencoderInput)] = [
        ("mlp_post_act", .mlpPostAct),
        ("resid_delta_mlp", .residual), ("resid_delta_attn", .residual), ("resid_post_mlp", .residual),
        ("resid_post_attn", .residual), ("resid_post_embedding", .residual),
        ("attn_weighted_sum_of_values", .attnZ),
    ]

    /// The kind of TDB's `DerivedScalarType` value `name`.
    package static func from(derivedScalarType name: String) -> AutoencoderInput? {
        sources.first { $0.name.description == name }?.input
    }
}

/// An enumeration whose cases carry TDB's string values.
package protocol TDBNamed: CaseIterable, Sendable {
    /// TDB's string value (static storage, so the C ABI can return it).
    var name: StaticString { get }
}

extension TDBNamed {
    /// The case whose TDB name is `name`.
    package static func named(_ name: String) -> Self? {
        allCases.first { $0.name.description == name }
    }
}

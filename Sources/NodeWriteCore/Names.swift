/// TDB's names for the things a node write is made of. Raw values are the C ABI's
/// pinned enum values; `name` is TDB's string value.

/// TDB's `NodeType` values for nodes that write to the residual stream.
public enum NodeType: Int32, TDBNamed {
    case mlpNeuron = 0
    case attentionHead = 1
    case autoencoderLatent = 2
    case mlpAutoencoderLatent = 3
    case attentionAutoencoderLatent = 4

    public var name: StaticString {
        switch self {
        case .mlpNeuron: "mlp_neuron"
        case .attentionHead: "attention_head"
        case .autoencoderLatent: "autoencoder_latent"
        case .mlpAutoencoderLatent: "mlp_autoencoder_latent"
        case .attentionAutoencoderLatent: "attention_autoencoder_latent"
        }
    }

    /// Number of tensor indices: (query, key, head) for attention, (token, x) otherwise.
    public var indexCount: Int { self == .attentionHead ? 3 : 2 }

    public var isLatent: Bool { self != .mlpNeuron && self != .attentionHead }

    /// The raw activation holding this latent type's values.
    var latentActivation: ActivationLocation? {
        switch self {
        case .autoencoderLatent: .onlineAutoencoderLatent
        case .mlpAutoencoderLatent: .onlineMLPAutoencoderLatent
        case .attentionAutoencoderLatent: .onlineAttentionAutoencoderLatent
        case .mlpNeuron, .attentionHead: nil
        }
    }
}

/// TDB's `ActivationLocationType` values of the raw activations a node write reads.
public enum ActivationLocation: Int32, TDBNamed {
    case mlpPostAct = 0
    case attnQKProbs = 1
    case attnValue = 2
    case onlineAutoencoderLatent = 3
    case onlineMLPAutoencoderLatent = 4
    case onlineAttentionAutoencoderLatent = 5

    public var name: StaticString {
        switch self {
        case .mlpPostAct: "mlp.post_act"
        case .attnQKProbs: "attn.qk_probs"
        case .attnValue: "attn.v"
        case .onlineAutoencoderLatent: "online_autoencoder_latent"
        case .onlineMLPAutoencoderLatent: "online_mlp_autoencoder_latent"
        case .onlineAttentionAutoencoderLatent: "online_attention_autoencoder_latent"
        }
    }

    /// The number of dimensions of this activation in TDB's layout.
    public var ndim: Int { self == .attnQKProbs || self == .attnValue ? 3 : 2 }
}

/// TDB's `WeightLocationType` values of the output weights.
public enum WeightLocation: Int32, TDBNamed {
    case mlpToResidual = 0
    case attnToResidual = 1

    public var name: StaticString {
        switch self {
        case .mlpToResidual: "mlp.to_residual"
        case .attnToResidual: "attn.to_residual"
        }
    }

    public var ndim: Int { self == .mlpToResidual ? 2 : 3 }
}

/// What an autoencoder was trained on, which decides how its decoded vector reaches
/// the residual stream.
public enum AutoencoderInput: Int32, CaseIterable, Sendable {
    /// MLP post-activations: the decoded vector goes through `mlp.to_residual`.
    case mlpPostAct = 0
    /// A residual-stream quantity: the decoded vector is the write.
    case residual = 1

    /// TDB's `DerivedScalarType` values accepted for each kind.
    public static func from(derivedScalarType name: String) -> AutoencoderInput? {
        switch name {
        case "mlp_post_act": .mlpPostAct
        case "resid_delta_mlp", "resid_delta_attn", "resid_post_mlp", "resid_post_attn",
             "resid_post_embedding": .residual
        default: nil
        }
    }
}

/// An enumeration whose cases carry TDB's string values.
public protocol TDBNamed: CaseIterable, Sendable {
    /// TDB's string value (static storage, so the C ABI can return it).
    var name: StaticString { get }
}

extension TDBNamed {
    /// The case whose TDB name is `name`.
    public static func named(_ name: String) -> Self? {
        allCases.first { $0.name.description == name }
    }
}

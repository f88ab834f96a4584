/// Symbols of the dimensions in the tables' shape rules. Raw values are the C ABI's `nw_dim`.
package enum Dim: Int32, CaseIterable, Sendable {
    case none = 0
    case one = 1
    /// T, the number of tokens (query tokens where there are two).
    case tokens = 2
    /// T(T+1)/2, the (query, key <= query) pairs.
    case tokenPairs = 3
    case heads = 4
    case dHead = 5
    case dModel = 6
    case dFF = 7
    /// n_latents of the autoencoder involved.
    case latents = 8
    case vocab = 9
    /// n_heads · d_head.
    case headChannels = 10

    /// The symbol as messages write it.
    package var symbol: StaticString {
        switch self {
        case .none: "-"
        case .one: "1"
        case .tokens: "T"
        case .tokenPairs: "T(T+1)/2"
        case .heads: "n_heads"
        case .dHead: "d_head"
        case .dModel: "d_model"
        case .dFF: "d_ff"
        case .latents: "n_latents"
        case .vocab: "n_vocab"
        case .headChannels: "n_heads × d_head"
        }
    }
}

extension ModelDims {
    /// The size of `dim` in this model, or nil for a dimension the model does not fix (T,
    /// T(T+1)/2, n_latents, n_vocab).
    package func size(of dim: Dim) -> Int? {
        switch dim {
        case .one: 1
        case .heads: nHeads
        case .dHead: dHead
        case .dModel: dModel
        case .dFF: dFF
        case .headChannels: nHeads &* dHead  // no overflow: checked with d_model when made
        case .none, .tokens, .tokenPairs, .latents, .vocab: nil
        }
    }
}

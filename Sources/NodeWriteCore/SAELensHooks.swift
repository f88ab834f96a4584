/// The SAELens hooks nodewrite reads SAEs on: the one table that the checkpoint loader
/// (`Model.loadAutoencoder(saeLensAt:)`), the C ABI (`nw_saelens_hook_info_get`,
/// `nw_saelens_hook_find`) and through it the bindings use.
package struct SAELensHook: Sendable {
    /// The hook is "blocks.L." + suffix.
    package let suffix: StaticString
    /// The latent node type its latents are (TDB's convention: MLP-side SAEs are MLP
    /// autoencoder latents, attention-side ones attention autoencoder latents, residual-stream
    /// ones the generic autoencoder latents).
    package let nodeType: NodeType
    /// What the decoded vector is.
    package let input: AutoencoderInput
    /// TDB's `DerivedScalarType` of what the SAE reads (an `AutoencoderInput.sources` name).
    package let tdbInput: StaticString
    /// The layers the row applies to (hook_resid_pre reads the embedding at layer 0 and the
    /// previous layer's residual stream after it): `minLayer ... maxLayer`, no upper
    /// bound when `maxLayer` is nil.
    package let minLayer: Int
    package let maxLayer: Int?

    init(_ suffix: StaticString, _ nodeType: NodeType, _ input: AutoencoderInput, _ tdbInput: StaticString,
         layers: (Int, Int?) = (0, nil)) {
        self.suffix = suffix; self.nodeType = nodeType; self.input = input; self.tdbInput = tdbInput
        (minLayer, maxLayer) = layers
    }

    package func applies(at layer: Int) -> Bool { layer >= minLayer && (maxLayer.map { layer <= $0 } ?? true) }

    package static let table: [SAELensHook] = [
        SAELensHook("hook_mlp_out", .mlpAutoencoderLatent, .residual, "resid_delta_mlp"),
        SAELensHook("mlp.hook_post", .mlpAutoencoderLatent, .mlpPostAct, "mlp_post_act"),
        SAELensHook("hook_attn_out", .attentionAutoencoderLatent, .residual, "resid_delta_attn"),
        SAELensHook("attn.hook_z", .attentionAutoencoderLatent, .attnZ, "attn_weighted_sum_of_values"),
        SAELensHook("hook_resid_pre", .autoencoderLatent, .residual, "resid_post_embedding", layers: (0, 0)),
        SAELensHook("hook_resid_pre", .autoencoderLatent, .residual, "resid_post_mlp", layers: (1, nil)),
        SAELensHook("hook_resid_mid", .autoencoderLatent, .residual, "resid_post_attn"),
        SAELensHook("hook_resid_post", .autoencoderLatent, .residual, "resid_post_mlp"),
    ]

    /// The row of the table that `hookName` ("blocks.L.<suffix>", L a decimal without sign or
    /// leading zeros) is, and L.
    /// - Throws: `.invalidArgument` for a name not of that form; `.unsupported` for a
    ///   blocks.L. hook nodewrite does not read. `what` names the argument in the message.
    package static func find(_ hookName: String, _ what: String) throws(NodeWriteError) -> (row: Int, layer: Int) {
        let parts = hookName.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blocks", let layer = canonicalInteger(parts[1]), !parts[2].isEmpty else {
            throw .invalidArgument("\(what) \(clip(hookName)) is not a hook name of the form blocks.L.<hook>")
        }
        guard let row = table.firstIndex(where: { $0.suffix.description == parts[2] && $0.applies(at: layer) }) else {
            throw .unsupported("\(what) \(clip(hookName)) is not a hook nodewrite reads SAEs on (blocks.L. + "
                               + "hook_mlp_out, mlp.hook_post, hook_attn_out, attn.hook_z, hook_resid_pre, "
                               + "hook_resid_mid or hook_resid_post)")
        }
        return (row, layer)
    }
}

extension Model {
    /// The layer and input kind of an SAELens hook name, for the checkpoint loader: every
    /// hook it cannot read, malformed or not, is `.unsupported` (as nw_model_load_autoencoder_safetensors
    /// documents).
    package static func autoencoderInput(hookName hook: String, _ source: String) throws(NodeWriteError)
        -> (layer: Int, input: AutoencoderInput) {
        do {
            let (row, layer) = try SAELensHook.find(hook, "\(source): hook_name")
            return (layer, SAELensHook.table[row].input)
        } catch {
            throw NodeWriteError(.unsupported, error.message)
        }
    }
}

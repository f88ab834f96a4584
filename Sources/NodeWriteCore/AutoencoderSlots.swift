/// One autoencoder per (latent node type, layer) slot: a second one is refused, never swapped in
/// silently (its latents would then be read with the other's decoder). To replace one, empty its
/// slot first (`Model.removeAutoencoder`); to keep two, use a second model, or a latent node type
/// whose slot at that layer is free (each node type reads its own online_* activation).
extension Model {
    /// - Throws: `.invalidArgument` when the slot holds an autoencoder, naming the slot, what it
    ///   holds and the fixes.
    package func ensureEmptySlot(_ nodeType: NodeType, layer: Int) throws(NodeWriteError) {
        guard let held = autoencoder(nodeType, layer: layer) else { return }
        let input = switch held.input {
        case .mlpPostAct: "mlp_post_act"
        case .residual: "residual"
        case .attnZ: "attn_z"
        }
        let free = NodeType.allCases.filter { $0.isLatent && autoencoder($0, layer: layer) == nil }
        let other = free.isEmpty ? "" : ", or the slot of another latent node type that is free at layer \(layer) ("
            + free.map { "\($0.name)" }.joined(separator: ", ") + ")"
        throw .invalidArgument(
            "autoencoder slot (\(nodeType.name), layer \(layer)) holds an autoencoder already (input \(input), decoder "
            + "\(held.decoder.view.shapeArray)); a slot holds one autoencoder. To replace it, empty the slot first with "
            + "nw_model_remove_autoencoder(model, \(nodeType.rawValue), \(layer)) (Python: model.remove_autoencoder("
            + "\"\(nodeType.name)\", \(layer)), or set_autoencoder(..., replace=True)); to keep both, put the second "
            + "on a second model\(other)")
    }
}

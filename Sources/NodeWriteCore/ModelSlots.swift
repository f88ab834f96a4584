/// What a model holds in its weight and autoencoder slots, for callers that ask instead of
/// keeping their own record (nw_model_weight_get, nw_model_autoencoder_get).
extension Model {
    /// The weight in slot (weight, layer), nil when the slot is empty.
    /// - Throws: `.indexOutOfRange` for a layer outside the model, or other than `noLayer`
    ///   for a weight of no layer (as `setWeight`).
    package func weightSlot(_ weight: WeightLocation, layer: Int) throws(NodeWriteError) -> WeightStorage? {
        if weight.hasLayer {
            try checkLayer(layer, "layer")
        } else if layer != Model.noLayer {
            throw .indexOutOfRange("layer = \(layer): weight \(weight.name) belongs to no layer (pass NW_NO_LAYER = -1)")
        }
        return self.weight(weight, layer: layer)
    }

    /// The autoencoder in slot (nodeType, layer), nil when the slot is empty.
    /// - Throws: `.invalidArgument` for a node type that is not a latent type;
    ///   `.indexOutOfRange` for the layer.
    package func autoencoderSlot(_ nodeType: NodeType, layer: Int) throws(NodeWriteError) -> Autoencoder? {
        guard nodeType.isLatent else {
            throw .invalidArgument("node_type \(nodeType.name) is not an autoencoder latent type")
        }
        try checkLayer(layer, "layer")
        return autoencoder(nodeType, layer: layer)
    }
}

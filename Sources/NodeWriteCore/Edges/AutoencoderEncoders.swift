/// An autoencoder's encoder (TDB's encoder.weight, (n_latents, n_inputs)) and biases:
/// z = relu((x - pre_bias) @ encoder.T + latent_bias). Edges differentiate through it.
package struct AutoencoderEncoder: Sendable {
    package let weight: WeightStorage
    package let latentBias: WeightStorage?
    package let preBias: WeightStorage?
    /// The decoder it belongs to (held, so that its identity cannot be reused by a later
    /// decoder at the same address): the encoder holds while its slot holds that decoder.
    let decoder: WeightStorage
}

extension Model {
    /// Sets the encoder of the autoencoder in slot (nodeType, layer), which must hold its
    /// decoder already; replaces an earlier encoder of that slot.
    package func setAutoencoderEncoder(_ nodeType: NodeType, layer: Int, encoder: TensorView, latentBias: TensorView?,
                                       preBias: TensorView?, copy: Bool, owner: AnyObject? = nil) throws(NodeWriteError) {
        guard nodeType.isLatent else {
            throw .invalidArgument("node_type \(nodeType.name) is not an autoencoder latent type")
        }
        try checkLayer(layer, "layer")
        guard let ae = autoencoder(nodeType, layer: layer) else {
            throw .missingInput("no autoencoder for \(nodeType.name) at layer \(layer) is set on the model; set its decoder first (nw_model_set_autoencoder)")
        }
        let latents = ae.latentCount, inputs = ae.decoder.view.shape[1]
        guard encoder.ndim == 2, encoder.shape[0] == latents, encoder.shape[1] == inputs else {
            throw .shapeMismatch("encoder: shape \(encoder.shapeArray) must be (n_latents, n_inputs) = (\(latents), \(inputs)), the decoder's (TDB's encoder.weight)")
        }
        if let b = latentBias, b.ndim != 1 || b.shape[0] != latents {
            throw .shapeMismatch("latent_bias: shape \(b.shapeArray) must be (n_latents,) = (\(latents),)")
        }
        if let b = preBias, b.ndim != 1 || b.shape[0] != inputs {
            throw .shapeMismatch("pre_bias: shape \(b.shapeArray) must be (n_inputs,) = (\(inputs),)")
        }
        func keep(_ v: TensorView, _ name: String) throws(NodeWriteError) -> WeightStorage {
            copy ? try WeightStorage(copying: v, name: name) : WeightStorage(borrowing: v, owner: owner)
        }
        let w = try keep(encoder, "encoder")
        let lb = try latentBias.map { (v) throws(NodeWriteError) in try keep(v, "latent_bias") }
        let pb = try preBias.map { (v) throws(NodeWriteError) in try keep(v, "pre_bias") }
        encoders[Key(kind: nodeType, layer: layer)] =
            AutoencoderEncoder(weight: w, latentBias: lb, preBias: pb, decoder: ae.decoder)
    }

    /// The encoder of slot (nodeType, layer), nil when none was set for the decoder it holds.
    package func encoder(_ nodeType: NodeType, layer: Int) -> AutoencoderEncoder? {
        guard let ae = autoencoder(nodeType, layer: layer), let e = encoders[Key(kind: nodeType, layer: layer)],
              e.decoder === ae.decoder else { return nil }
        return e
    }
}

import CNodeWrite
import NodeWriteCore

// nw_model_* of nodewrite.h.

@_cdecl("nw_model_create") @implementation
public func nw_model_create(_ dims: UnsafePointer<nw_model_dims>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let out = try required(out, "out")
        out.pointee = Handle.retain(Model(dims: try ModelDims(dims)))
    }
}

@_cdecl("nw_model_destroy") @implementation
public func nw_model_destroy(_ model: OpaquePointer?) { counted { Handle.release(model, as: Model.self) } }

@_cdecl("nw_model_dims_get") @implementation
public func nw_model_dims_get(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<nw_model_dims>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let d = try Handle.borrow(model, as: Model.self, "model").dims
        try required(out, "out").pointee = nw_model_dims(
            n_layers: Int64(d.nLayers), d_model: Int64(d.dModel), n_heads: Int64(d.nHeads),
            d_head: Int64(d.dHead), d_ff: Int64(d.dFF))
    }
}

@_cdecl("nw_model_set_weight") @implementation
public func nw_model_set_weight(_ model: OpaquePointer?, _ weight: Int32, _ layer: Int32,
                                _ w: UnsafePointer<nw_tensor_view>?, _ ownership: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let location = try decode(weight, as: WeightLocation.self, "weight")
        let copy = try copies(ownership)
        let at = layer != -1 ? " at layer \(layer)" : ""
        let view = try TensorView(w, ndim: location.ndim, subject: "weight \(location.name)\(at)",
                                  layout: shapeText(location.dims))
        try model.setWeight(location, layer: Int(layer), view: view, copy: copy)
    }
}

@_cdecl("nw_model_set_autoencoder") @implementation
public func nw_model_set_autoencoder(_ model: OpaquePointer?, _ nodeType: Int32, _ layer: Int32, _ input: Int32,
                                     _ decoder: UnsafePointer<nw_tensor_view>?, _ ownership: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let type = try decode(nodeType, as: NodeType.self, "node_type")
        guard type.isLatent else { throw .invalidArgument("node_type \(type.name) is not an autoencoder latent type") }
        let kind = try decode(input, as: AutoencoderInput.self, "input")
        let copy = try copies(ownership)
        let view = try TensorView(decoder, ndim: 2, subject: "decoder of \(type.name) at layer \(layer)",
                                  layout: "(n_latents, n_inputs)")
        try model.setAutoencoder(type, layer: Int(layer), input: kind, decoder: view, copy: copy)
    }
}

/// NW_COPY for the library's own memory (a copy, or a checkpoint's tensor read into memory),
/// NW_BORROW for memory it reads in place (the caller's).
private func ownership(_ storage: WeightStorage) -> Int32 {
    Int32(storage.isCopy ? NW_COPY.rawValue : NW_BORROW.rawValue)
}

@_cdecl("nw_model_weight_get") @implementation
public func nw_model_weight_get(_ model: OpaquePointer?, _ weight: Int32, _ layer: Int32,
                                _ out: UnsafeMutablePointer<nw_weight_state>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let location = try decode(weight, as: WeightLocation.self, "weight")
        let storage = try model.weightSlot(location, layer: Int(layer))
        try writeSized(out) {
            var s = nw_weight_state()
            if let storage {
                let v = storage.view
                s.present = 1
                s.dtype = v.dtype.rawValue
                s.ownership = ownership(storage)
                s.ndim = Int32(v.ndim)
                s.shape = four(v.shapeArray.map(Int64.init), 0)
            }
            return s
        }
    }
}

@_cdecl("nw_model_autoencoder_get") @implementation
public func nw_model_autoencoder_get(_ model: OpaquePointer?, _ nodeType: Int32, _ layer: Int32,
                                     _ out: UnsafeMutablePointer<nw_autoencoder_state>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let type = try decode(nodeType, as: NodeType.self, "node_type")
        let ae = try model.autoencoderSlot(type, layer: Int(layer))
        try writeSized(out) {
            var s = nw_autoencoder_state()
            if let ae {
                let v = ae.decoder.view
                s.present = 1
                s.input = ae.input.rawValue
                s.dtype = v.dtype.rawValue
                s.ownership = ownership(ae.decoder)
                s.n_latents = Int64(v.shape[0])
                s.n_inputs = Int64(v.shape[1])
            }
            return s
        }
    }
}

@_cdecl("nw_model_set_causal") @implementation
public func nw_model_set_causal(_ model: OpaquePointer?, _ causal: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        guard causal == 0 || causal == 1 else { throw .invalidArgument("causal = \(causal) must be 0 or 1") }
        model.causal = causal == 1
    }
}

@_cdecl("nw_model_get_causal") @implementation
public func nw_model_get_causal(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        try required(out, "out").pointee = model.causal ? 1 : 0
    }
}

@_cdecl("nw_model_remove_autoencoder") @implementation
public func nw_model_remove_autoencoder(_ model: OpaquePointer?, _ nodeType: Int32, _ layer: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let type = try decode(nodeType, as: NodeType.self, "node_type")
        try model.removeAutoencoder(type, layer: Int(layer))
    }
}

@_cdecl("nw_model_set_mlp_activation") @implementation
public func nw_model_set_mlp_activation(_ model: OpaquePointer?, _ activation: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        guard let value = MLPActivation(rawValue: activation) else {
            let known = MLPActivation.allCases.map { "\($0.rawValue) (\($0.name))" }.joined(separator: ", ")
            throw .invalidArgument("activation = \(activation) is not an nw_mlp_activation; known: \(known)")
        }
        model.mlpActivation = value
    }
}

@_cdecl("nw_model_get_mlp_activation") @implementation
public func nw_model_get_mlp_activation(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        try required(out, "out").pointee = model.mlpActivation.rawValue
    }
}

@_cdecl("nw_model_set_layer_norm_epsilon") @implementation
public func nw_model_set_layer_norm_epsilon(_ model: OpaquePointer?, _ epsilon: Double) -> nw_status {
    boundary { () throws(NodeWriteError) in
        try Handle.borrow(model, as: Model.self, "model").setLayerNormEpsilon(epsilon)
    }
}

@_cdecl("nw_model_get_layer_norm_epsilon") @implementation
public func nw_model_get_layer_norm_epsilon(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Double>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        try required(out, "out").pointee = model.layerNormEpsilonSetting
    }
}

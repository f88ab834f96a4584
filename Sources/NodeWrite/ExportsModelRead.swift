import CNodeWrite
import NodeWriteCore

// nw_model_weight_read / nw_model_autoencoder_read of nodewrite.h: what a model holds, copied
// out as float32 in canonical row-major order (how a binding pickles a copied weight).

@_cdecl("nw_model_weight_read") @implementation
public func nw_model_weight_read(_ model: OpaquePointer?, _ weight: Int32, _ layer: Int32,
                                 _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let location = try decode(weight, as: WeightLocation.self, "weight")
        guard let storage = try model.weightSlot(location, layer: Int(layer)) else {
            let at = layer != -1 ? " at layer \(layer)" : ""
            throw .missingInput("weight \(location.name)\(at) is not set on the model")
        }
        try copyOut(storage.view, out, outLen)
    }
}

@_cdecl("nw_model_autoencoder_read") @implementation
public func nw_model_autoencoder_read(_ model: OpaquePointer?, _ nodeType: Int32, _ layer: Int32,
                                      _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let type = try decode(nodeType, as: NodeType.self, "node_type")
        guard type.isLatent else { throw .invalidArgument("node_type \(type.name) is not an autoencoder latent type") }
        guard let ae = try model.autoencoderSlot(type, layer: Int(layer)) else {
            throw .missingInput("no autoencoder for \(type.name) at layer \(layer) is set on the model")
        }
        try copyOut(ae.decoder.view, out, outLen)
    }
}

/// The view's elements, row-major, as float32 into the caller's buffer (checked first).
private func copyOut(_ view: TensorView, _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) throws(NodeWriteError) {
    guard view.count > 0 else { return }
    guard capacity(outLen) >= view.count else {
        throw .bufferTooSmall("out: capacity \(capacity(outLen)) is less than the \(view.count) elements of shape \(view.shapeArray)")
    }
    let buffer = try outputBuffer(out, outLen, "out")
    var n = 0
    let s = view.shape
    for i in 0..<s[0] {
        for j in 0..<s[1] {
            for k in 0..<s[2] {
                buffer[n] = view.value(at: view.offset(i, j, k))
                n += 1
            }
        }
    }
}

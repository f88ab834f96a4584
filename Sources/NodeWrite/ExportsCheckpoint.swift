import CNodeWrite
import NodeWriteCore

// nw_model_load_safetensors and nw_model_load_autoencoder_safetensors of nodewrite.h.

/// A caller's path as a String; it must be UTF-8 (checked, never repaired: a repaired
/// path would name another file).
func path(_ pointer: UnsafePointer<CChar>?) throws(NodeWriteError) -> String {
    guard let s = String(validatingCString: try required(pointer, "path")) else {
        throw .invalidArgument("path is not valid UTF-8")
    }
    guard !s.isEmpty else { throw .invalidArgument("path is empty") }
    return s
}

@_cdecl("nw_model_load_safetensors") @implementation
public func nw_model_load_safetensors(_ path: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?)
    -> nw_status {
    boundary { () throws(NodeWriteError) in
        let out = try required(out, "out")
        let model = try Model.load(safetensorsAt: try NodeWrite.path(path))
        out.pointee = Handle.retain(model)
    }
}

@_cdecl("nw_model_load_autoencoder_safetensors") @implementation
public func nw_model_load_autoencoder_safetensors(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?,
                                                  _ nodeType: Int32, _ layer: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let type = try decode(nodeType, as: NodeType.self, "node_type")
        let path = try NodeWrite.path(path)
        try model.loadAutoencoder(saeLensAt: path, nodeType: type, layer: Int(layer))
    }
}

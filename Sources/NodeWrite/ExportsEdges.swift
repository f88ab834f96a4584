import CNodeWrite
import NodeWriteCore

// Edges of nodewrite.h: the backward pass in the store, autoencoder encoders, nw_derive_node.

@_cdecl("nw_store_put_pass") @implementation
public func nw_store_put_pass(_ store: OpaquePointer?, _ activation: Int32, _ layer: Int32, _ pass: Int32,
                              _ t: UnsafePointer<nw_tensor_view>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let box = try Handle.borrow(store, as: StoreBox.self, "store")
        let location = try decode(activation, as: ActivationLocation.self, "activation")
        let pass = try decode(pass, as: Pass.self, "pass")
        // Named as nw_store_put names its view (the binding passes the message on as is).
        let what = pass == .backward ? "gradient (backward pass) of" : "activation"
        let view = try TensorView(t, ndim: location.ndim, subject: "\(what) \(location.name) at layer \(layer)",
                                  layout: location.shapeText)
        try box.store.put(location, layer: Int(layer), view, pass: pass)
    }
}

@_cdecl("nw_store_remove_pass") @implementation
public func nw_store_remove_pass(_ store: OpaquePointer?, _ activation: Int32, _ layer: Int32, _ pass: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let box = try Handle.borrow(store, as: StoreBox.self, "store")
        let location = try decode(activation, as: ActivationLocation.self, "activation")
        try box.store.remove(location, layer: Int(layer), pass: try decode(pass, as: Pass.self, "pass"))
    }
}

@_cdecl("nw_model_set_autoencoder_encoder") @implementation
public func nw_model_set_autoencoder_encoder(_ model: OpaquePointer?, _ nodeType: Int32, _ layer: Int32,
                                             _ encoder: UnsafePointer<nw_tensor_view>?,
                                             _ latentBias: UnsafePointer<nw_tensor_view>?,
                                             _ preBias: UnsafePointer<nw_tensor_view>?, _ ownership: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let type = try decode(nodeType, as: NodeType.self, "node_type")
        guard type.isLatent else { throw .invalidArgument("node_type \(type.name) is not an autoencoder latent type") }
        let copy = try copies(ownership)
        let e = try TensorView(encoder, ndim: 2, name: "encoder")
        let lb = try TensorView(latentBias, ndim: 1, name: "latent_bias")
        let pb = try TensorView(preBias, ndim: 1, name: "pre_bias")
        try model.setAutoencoderEncoder(type, layer: Int(layer), encoder: e, latentBias: lb, preBias: pb, copy: copy)
    }
}

extension EdgeNode {
    /// Validates a caller's node argument of an edge call (NW_INDEX_NONE allowed) and its subnode.
    init(_ pointer: UnsafePointer<nw_node_index>, subnode raw: Int32) throws(NodeWriteError) {
        let n = pointer.pointee
        let type = try decode(n.node_type, as: NodeType.self, "node.node_type")
        guard n.reserved == 0 else { throw .invalidArgument("node.reserved = \(n.reserved): must be 0 (the subnode is nw_derive_node's subnode argument)") }
        let subnode = try decode(raw, as: Subnode.self, "subnode")
        try checkIndexCount(Int(n.n_indices), type, "node.n_indices")
        var indices = NodeIndices(repeating: 0)
        indices[0] = Int(n.indices.0)
        indices[1] = Int(n.indices.1)
        if type.indexCount == 3 { indices[2] = Int(n.indices.2) }
        self.init(NodeIndex(type, layer: Int(n.layer), indices: indices), subnode: subnode)
    }
}

/// NW_OUT_ZEROED and NW_DETACH_LAYER_NORM_SCALE; other bits are unknown flags.
private func edgeFlags(_ flags: UInt32) throws(NodeWriteError) -> (zeroed: Bool, detach: Bool) {
    let zeroed = UInt32(NW_OUT_ZEROED.rawValue), detach = UInt32(NW_DETACH_LAYER_NORM_SCALE.rawValue)
    guard flags & ~(zeroed | detach) == 0 else {
        throw .invalidArgument("flags = \(flags): unknown bits (only NW_OUT_ZEROED = \(zeroed) and NW_DETACH_LAYER_NORM_SCALE = \(detach))")
    }
    return (flags & zeroed != 0, flags & detach != 0)
}

@_cdecl("nw_derive_node") @implementation
public func nw_derive_node(_ model: OpaquePointer?, _ store: OpaquePointer?, _ dst: Int32, _ layer: Int32,
                           _ node: UnsafePointer<nw_node_index>?, _ subnode: Int32, _ flags: UInt32,
                           _ out: UnsafeMutablePointer<Float>?, _ outLen: Int,
                           _ outShape: UnsafeMutablePointer<Int64>?, _ outNdim: UnsafeMutablePointer<Int32>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let dst = try decode(dst, as: DerivedScalar.self, "dst")
        let (zeroed, detach) = try edgeFlags(flags)
        guard dst.spec.edge != nil else {
            // The write family: nw_derive without a direction (the norms), and no node.
            guard node == nil, subnode == NW_SUBNODE_NONE.rawValue else {
                throw .invalidArgument(node != nil ? "node: \(dst.spec.name) is a write-family DST and takes no node; pass NULL (or call nw_derive)"
                                       : "subnode = \(subnode): \(dst.spec.name) takes no node; pass NW_SUBNODE_NONE")
            }
            guard !detach else {
                throw .invalidArgument("flags: NW_DETACH_LAYER_NORM_SCALE applies to edge DSTs, not to \(dst.spec.name)")
            }
            let run = try DerivedScalarRun(dst, model: model, store: s.store, layer: Int(layer), direction: nil,
                                           threads: Kernels.threads, outputZeroed: zeroed)
            try SizedArray(out: out, outLen: outLen, shape: outShape, ndim: outNdim).deliver(
                OutputShape(run.shape),
                checkInputs: { (span) throws(NodeWriteError) in try run.ensureDisjoint(span) },
                write: { (buffer) throws(NodeWriteError) in try run.derive(into: buffer.baseAddress.unsafelyUnwrapped) })
            return
        }
        guard node != nil || subnode == NW_SUBNODE_NONE.rawValue else {
            throw .invalidArgument("subnode = \(subnode) but node is NULL; a subnode belongs to a node")
        }
        let edgeNode = try node.map { (p) throws(NodeWriteError) in try EdgeNode(p, subnode: subnode) }
        let run = try EdgeRun(dst, model: model, store: s.store, layer: Int(layer), node: edgeNode, detach: detach,
                              threads: Kernels.threads, outputZeroed: zeroed)
        guard out != nil || outLen == 0 else { throw .invalidArgument("out is NULL but out_len is \(UInt(bitPattern: outLen))") }
        let outSpan = OutputSpan(out, count: min(capacity(outLen), run.count), "out")
        let shapeSpan = OutputSpan(outShape, count: run.shape.count, "out_shape"), ndimSpan = OutputSpan(outNdim, count: 1, "out_ndim")
        try run.ensureDisjoint(shapeSpan)
        try run.ensureDisjoint(ndimSpan)
        try shapeSpan.ensureDisjoint(from: outSpan)
        try ndimSpan.ensureDisjoint(from: outSpan)
        try ndimSpan.ensureDisjoint(from: shapeSpan)
        if let node { try outSpan.ensureDisjoint(from: UnsafeBufferPointer(start: node, count: 1), "node") }
        func writeShape() {
            for (i, size) in run.shape.enumerated() { outShape?[i] = Int64(size) }
            outNdim?.pointee = Int32(run.shape.count)
        }
        guard let out, capacity(outLen) >= run.count else {
            writeShape()  // the shape to allocate
            throw .bufferTooSmall("out: capacity \(out == nil ? 0 : capacity(outLen)) is less than the \(run.count) floats of shape \(run.shape)")
        }
        // The inputs are read and checked before out is written; the shape after it is.
        try run.derive(into: out)
        writeShape()
    }
}

import CNodeWrite
import NodeWriteCore

// Derived scalars (TDB's write family) and token-space writes of nodewrite.h.

@_cdecl("nw_dst_name") @implementation
public func nw_dst_name(_ dst: Int32) -> UnsafePointer<CChar>? { name(dst, DerivedScalar.self) }

@_cdecl("nw_dst_from_name") @implementation
public func nw_dst_from_name(_ s: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Int32>?) -> nw_status {
    value(s, out, DerivedScalar.self, "derived scalar type")
}

/// An optional direction view of one or two dimensions.
func directionView(_ pointer: UnsafePointer<nw_tensor_view>?) throws(NodeWriteError) -> TensorView? {
    guard let pointer else { return nil }
    let ndim = pointer.pointee.ndim
    guard ndim == 1 || ndim == 2 else {
        throw .shapeMismatch("direction.ndim = \(ndim) but a direction is (T, d_model) or (d_model,)")
    }
    return try TensorView(pointer, ndim: Int(ndim), name: "direction")
}

@_cdecl("nw_derive") @implementation
public func nw_derive(_ model: OpaquePointer?, _ store: OpaquePointer?, _ dst: Int32, _ layer: Int32,
                      _ direction: UnsafePointer<nw_tensor_view>?, _ flags: UInt32,
                      _ out: UnsafeMutablePointer<Float>?, _ outLen: Int,
                      _ outShape: UnsafeMutablePointer<Int64>?, _ outNdim: UnsafeMutablePointer<Int32>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let dst = try decode(dst, as: DerivedScalar.self, "dst")
        let zeroed = try outputZeroed(flags)
        let run = try DerivedScalarRun(dst, model: model, store: s.store, layer: Int(layer),
                                       direction: try directionView(direction), threads: Kernels.threads,
                                       outputZeroed: zeroed)
        try SizedArray(out: out, outLen: outLen, shape: outShape, ndim: outNdim).deliver(
            OutputShape(run.shape),
            checkInputs: { (span) throws(NodeWriteError) in try run.ensureDisjoint(span) },
            write: { (buffer) throws(NodeWriteError) in try run.derive(into: buffer.baseAddress.unsafelyUnwrapped) })
    }
}

@_cdecl("nw_node_write_to_direction") @implementation
public func nw_node_write_to_direction(_ model: OpaquePointer?, _ store: OpaquePointer?, _ node: UnsafePointer<nw_node_index>?,
                                       _ direction: UnsafePointer<nw_tensor_view>?, _ out: UnsafeMutablePointer<Float>?,
                                       _ outLen: Int, _ outShape: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let deriver = try NodeWriteDeriver(model: model, node: try NodeIndex(node))
        guard let view = try directionView(direction) else { throw .invalidArgument("direction is NULL") }
        let bound = try deriver.bind(s.store)  // the store, read once
        let g = try Direction(view, dModel: model.dims.dModel, tokens: bound.form.tokens)
        try SizedArray(out: out, outLen: outLen, shape: outShape).deliver(
            OutputShape(bound.form.tokens, 1),
            checkInputs: { (span) throws(NodeWriteError) in
                try bound.ensureDisjoint(span)
                try span.ensureDisjoint(from: view, "the direction")
            },
            write: { (buffer) throws(NodeWriteError) in try bound.projection(g, into: buffer) })
    }
}

@_cdecl("nw_model_vocab_size") @implementation
public func nw_model_vocab_size(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        try required(out, "out").pointee = Int64(model.weight(.unembedding, layer: Model.noLayer)?.view.shape[1] ?? 0)
    }
}

@_cdecl("nw_token_writes") @implementation
public func nw_token_writes(_ model: OpaquePointer?, _ store: OpaquePointer?, _ nodeType: Int32, _ layer: Int32,
                            _ indices: UnsafePointer<Int64>?, _ nNodes: Int, _ nIndices: Int,
                            _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let set = try nodeSet(model, nodeType, layer, indices, nNodes, nIndices)
        guard nNodes == 0 || out != nil else { throw .invalidArgument("out is NULL") }
        try set.tokenWrites(model, s.store, into: UnsafeMutableBufferPointer(start: out, count: out == nil ? 0 : capacity(outLen)))
    }
}

@_cdecl("nw_token_writes_top_k") @implementation
public func nw_token_writes_top_k(_ model: OpaquePointer?, _ store: OpaquePointer?, _ nodeType: Int32, _ layer: Int32,
                                  _ indices: UnsafePointer<Int64>?, _ nNodes: Int, _ nIndices: Int, _ topK: Int64,
                                  _ largest: Int32, _ values: UnsafeMutablePointer<Float>?,
                                  _ tokenIds: UnsafeMutablePointer<Int64>?, _ cap: Int) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let set = try nodeSet(model, nodeType, layer, indices, nNodes, nIndices)
        guard nNodes == 0 || (values != nil && tokenIds != nil) else { throw .invalidArgument("values or token_ids is NULL") }
        let n = values == nil || tokenIds == nil ? 0 : capacity(cap)
        try set.tokenWritesTopK(model, s.store, k: Int(topK), largest: largest != 0,
                                values: UnsafeMutableBufferPointer(start: values, count: n),
                                ids: UnsafeMutableBufferPointer(start: tokenIds, count: n))
    }
}

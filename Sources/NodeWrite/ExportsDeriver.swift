import CNodeWrite
import NodeWriteCore

// The node-write deriver functions of nodewrite.h.

@_cdecl("nw_node_write_deriver_create") @implementation
public func nw_node_write_deriver_create(_ model: OpaquePointer?, _ node: UnsafePointer<nw_node_index>?,
                                         _ out: UnsafeMutablePointer<OpaquePointer?>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let node = try NodeIndex(node)
        let out = try required(out, "out")
        out.pointee = Handle.retain(DeriverBox(try NodeWriteDeriver(model: model, node: node)))
    }
}

@_cdecl("nw_deriver_destroy") @implementation
public func nw_deriver_destroy(_ deriver: OpaquePointer?) { counted { Handle.release(deriver, as: DeriverBox.self) } }

@_cdecl("nw_deriver_requirements") @implementation
public func nw_deriver_requirements(_ deriver: OpaquePointer?, _ out: UnsafeMutablePointer<nw_requirement>?,
                                    _ capacity: Int, _ count: UnsafeMutablePointer<Int>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let d = try Handle.borrow(deriver, as: DeriverBox.self, "deriver").deriver
        let count = try required(count, "count")
        guard capacity == 0 || out != nil else { throw .invalidArgument("out is NULL but capacity is \(capacity)") }
        let requirements = d.requirements, needed = requirements.count
        guard NodeWrite.capacity(capacity) >= needed else {
            count.pointee = needed
            throw .bufferTooSmall("out: capacity \(capacity) is less than the \(needed) requirements")
        }
        for (i, location) in requirements.enumerated() {
            out.unsafelyUnwrapped[i] = nw_requirement(activation: location.rawValue, layer: Int32(d.node.layer))
        }
        count.pointee = needed
    }
}

@_cdecl("nw_deriver_output_shape") @implementation
public func nw_deriver_output_shape(_ deriver: OpaquePointer?, _ store: OpaquePointer?,
                                    _ shape: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let d = try Handle.borrow(deriver, as: DeriverBox.self, "deriver").deriver
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let shape = try required(shape, "shape")
        let (rows, columns) = try d.outputShape(s.store)
        shape[0] = Int64(rows)
        shape[1] = Int64(columns)
    }
}

@_cdecl("nw_deriver_derive") @implementation
public func nw_deriver_derive(_ deriver: OpaquePointer?, _ store: OpaquePointer?,
                              _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let d = try Handle.borrow(deriver, as: DeriverBox.self, "deriver").deriver
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        try d.derive(s.store, into: try outputBuffer(out, outLen, "out"))
    }
}

@_cdecl("nw_deriver_derive_vector") @implementation
public func nw_deriver_derive_vector(_ deriver: OpaquePointer?, _ store: OpaquePointer?,
                                     _ out: UnsafeMutablePointer<Float>?, _ outLen: Int,
                                     _ tokenRow: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let d = try Handle.borrow(deriver, as: DeriverBox.self, "deriver").deriver
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let buffer = try outputBuffer(out, outLen, "out")
        let rowSpan = OutputSpan(tokenRow, count: 1, "token_row")
        let bound = try d.bind(s.store)
        try bound.ensureDisjoint(rowSpan)
        try rowSpan.ensureDisjoint(from: OutputSpan(out, count: min(buffer.count, d.source.dims.dModel), "out"))
        let row = try bound.writeVector(into: buffer)
        tokenRow?.pointee = Int64(row)
    }
}

@_cdecl("nw_node_write") @implementation
public func nw_node_write(_ model: OpaquePointer?, _ store: OpaquePointer?, _ node: UnsafePointer<nw_node_index>?,
                          _ out: UnsafeMutablePointer<Float>?, _ outLen: Int) -> nw_status {
    nw_node_write_sized(model, store, node, 0, out, outLen, nil)
}

@_cdecl("nw_node_write_sized") @implementation
public func nw_node_write_sized(_ model: OpaquePointer?, _ store: OpaquePointer?, _ node: UnsafePointer<nw_node_index>?,
                                _ flags: UInt32, _ out: UnsafeMutablePointer<Float>?, _ outLen: Int,
                                _ outShape: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let deriver = try NodeWriteDeriver(model: model, node: try NodeIndex(node))
        let zeroed = try outputZeroed(flags)
        let bound = try deriver.bind(s.store)  // the store, read once
        try SizedArray(out: out, outLen: outLen, shape: outShape).deliver(
            OutputShape(bound.form.tokens, bound.form.dModel),
            checkInputs: { (span) throws(NodeWriteError) in try bound.ensureDisjoint(span) },
            write: { (buffer) throws(NodeWriteError) in try bound.write(into: buffer, outputZeroed: zeroed) })
    }
}

@_cdecl("nw_node_write_vectors") @implementation
public func nw_node_write_vectors(_ model: OpaquePointer?, _ store: OpaquePointer?,
                                  _ nodes: UnsafePointer<nw_node_index>?, _ nNodes: Int,
                                  _ out: UnsafeMutablePointer<Float>?, _ outLen: Int,
                                  _ tokenRows: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        guard nNodes >= 0, nNodes <= Int.max / model.dims.dModel else {
            throw .invalidArgument("n_nodes = \(UInt(bitPattern: nNodes)) is too large")
        }
        guard nNodes == 0 || nodes != nil else { throw .invalidArgument("nodes is NULL but n_nodes is \(nNodes)") }
        let needed = nNodes * model.dims.dModel
        guard nNodes == 0 || out != nil else { throw .invalidArgument("out is NULL") }
        guard capacity(outLen) >= needed else {
            throw .bufferTooSmall("out: capacity \(outLen) is less than n_nodes × d_model = \(needed)")
        }
        func deriver(_ i: Int) throws(NodeWriteError) -> NodeWriteDeriver {
            try NodeWriteDeriver(model: model, node: try NodeIndex(nodes.unsafelyUnwrapped + i))
        }
        // Validate every node, and the outputs against every input, before writing anything.
        let outSpan = OutputSpan(out, count: needed, "out"), rowsSpan = OutputSpan(tokenRows, count: nNodes, "token_rows")
        let nodeArray = UnsafeBufferPointer(start: nodes, count: nNodes)
        try outSpan.ensureDisjoint(from: nodeArray, "nodes")
        try rowsSpan.ensureDisjoint(from: nodeArray, "nodes")
        try rowsSpan.ensureDisjoint(from: outSpan)
        // Two passes (validate every node, then write), each resolving the node: holding every
        // resolved node between them would take memory in proportion to n_nodes.
        for i in 0..<nNodes {
            do throws(NodeWriteError) { try deriver(i).validate(s.store, outputs: outSpan, rowsSpan) }
            catch { throw error.prefixed("nodes[\(i)]: ") }
        }
        let dModel = model.dims.dModel
        for i in 0..<nNodes {
            let row = try deriver(i).deriveVector(
                s.store, into: UnsafeMutableBufferPointer(start: out.unsafelyUnwrapped + i * dModel, count: dModel))
            tokenRows?[i] = Int64(row)
        }
    }
}

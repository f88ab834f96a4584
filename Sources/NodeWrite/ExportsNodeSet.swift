import CNodeWrite
import NodeWriteCore

// Node sets and threads of nodewrite.h.

@_cdecl("nw_node_type_index_count") @implementation
public func nw_node_type_index_count(_ nodeType: Int32) -> Int32 {
    counted { NodeType(rawValue: nodeType).map { Int32($0.indexCount) } ?? 0 }
}

/// A caller's node set, validated against the model.
func nodeSet(_ model: Model, _ nodeType: Int32, _ layer: Int32, _ indices: UnsafePointer<Int64>?,
             _ nNodes: Int, _ nIndices: Int) throws(NodeWriteError) -> NodeSet {
    let type = try decode(nodeType, as: NodeType.self, "node_type")
    guard nNodes >= 0, nIndices >= 0 else {
        throw .invalidArgument("n_nodes = \(UInt(bitPattern: nNodes)) or n_indices = \(UInt(bitPattern: nIndices)) is too large")
    }
    try checkIndexCount(nIndices, type, "n_indices")
    let (count, overflow) = nNodes.multipliedReportingOverflow(by: nIndices)
    guard !overflow, count <= Int.max / 8 else { throw .invalidArgument("n_nodes = \(nNodes) is too large") }
    guard count == 0 || indices != nil else { throw .invalidArgument("indices is NULL but n_nodes is \(nNodes)") }
    return try NodeSet(model: model, nodeType: type, layer: Int(layer),
                       indices: UnsafeBufferPointer(start: indices, count: count), count: nNodes, indexCount: nIndices)
}

@_cdecl("nw_node_writes") @implementation
public func nw_node_writes(_ model: OpaquePointer?, _ store: OpaquePointer?, _ nodeType: Int32, _ layer: Int32,
                           _ indices: UnsafePointer<Int64>?, _ nNodes: Int, _ nIndices: Int,
                           _ out: UnsafeMutablePointer<Float>?, _ outLen: Int,
                           _ tokenRows: UnsafeMutablePointer<Int64>?) -> nw_status {
    boundary { () throws(NodeWriteError) in
        let model = try Handle.borrow(model, as: Model.self, "model")
        let s = try Handle.borrow(store, as: StoreBox.self, "store")
        let set = try nodeSet(model, nodeType, layer, indices, nNodes, nIndices)
        guard nNodes == 0 || out != nil else { throw .invalidArgument("out is NULL") }
        try set.writes(s.store, into: UnsafeMutableBufferPointer(start: out, count: out == nil ? 0 : capacity(outLen)),
                       tokenRows: tokenRows)
    }
}

@_cdecl("nw_set_num_threads") @implementation
public func nw_set_num_threads(_ n: Int32) -> nw_status {
    boundary { () throws(NodeWriteError) in
        guard n >= 0, n <= 1024 else { throw .invalidArgument("n = \(n): the thread count must be 0 (the default) to 1024") }
        Kernels.setThreads(Int(n))
    }
}

@_cdecl("nw_get_num_threads") @implementation
public func nw_get_num_threads() -> Int32 { counted { Int32(Kernels.threads) } }

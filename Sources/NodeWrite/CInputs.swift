import CNodeWrite
import NodeWriteCore

// Validation of raw C structs into core types. Nothing below this file sees a raw
// view or node index.

extension TensorView {
    /// Validates a caller's view of `ndim` dimensions. Reads `shape` and `strides`
    /// only after checking `ndim`.
    init(_ pointer: UnsafePointer<nw_tensor_view>?, ndim expected: Int, name: StaticString) throws(NodeWriteError) {
        let v = try required(pointer, name).pointee
        guard let dtype = DType(rawValue: v.dtype) else {
            throw .unsupportedDType("\(name).dtype = \(v.dtype) is not an nw_dtype")
        }
        guard v.ndim == expected else {
            throw .shapeMismatch("\(name).ndim = \(v.ndim) but \(expected) dimensions are expected")
        }
        let shapePointer = try required(v.shape, "view.shape")
        var shape: [Int] = [], strides: [Int]? = nil
        shape.reserveCapacity(expected)
        for i in 0..<expected { shape.append(Int(shapePointer[i])) }
        if let s = v.strides { strides = (0..<expected).map { Int(s[$0]) } }
        try self.init(base: v.data, dtype: dtype, shape: shape, strides: strides, name: "\(name)")
    }
}

extension NodeIndex {
    /// Validates a caller's node index.
    init(_ pointer: UnsafePointer<nw_node_index>?) throws(NodeWriteError) {
        let n = try required(pointer, "node").pointee
        let type = try decode(n.node_type, as: NodeType.self, "node.node_type")
        guard n.reserved == 0 else { throw .invalidArgument("node.reserved = \(n.reserved) must be 0") }
        try checkIndexCount(Int(n.n_indices), type, "node.n_indices")
        var indices = NodeIndices(repeating: 0)
        indices[0] = Int(n.indices.0)
        indices[1] = Int(n.indices.1)
        if type.indexCount == 3 { indices[2] = Int(n.indices.2) }
        self.init(type, layer: Int(n.layer), indices: indices)
    }
}

extension ModelDims {
    init(_ pointer: UnsafePointer<nw_model_dims>?) throws(NodeWriteError) {
        let d = try required(pointer, "dims").pointee
        try self.init(nLayers: Int(d.n_layers), dModel: Int(d.d_model), nHeads: Int(d.n_heads),
                      dHead: Int(d.d_head), dFF: Int(d.d_ff))
    }
}

/// NW_COPY or NW_BORROW as "copy?".
func copies(_ ownership: Int32) throws(NodeWriteError) -> Bool {
    switch ownership {
    case Int32(NW_COPY.rawValue): return true
    case Int32(NW_BORROW.rawValue): return false
    default: throw .invalidArgument("ownership = \(ownership) is neither NW_COPY nor NW_BORROW")
    }
}

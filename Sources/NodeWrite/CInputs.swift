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

extension TensorView {
    /// Validates a caller's view of a named input: messages name it as the caller passed it
    /// (`subject`, e.g. "activation mlp.post_act at layer 5") with its shape rule (`layout`,
    /// e.g. "(T, d_ff)").
    init(_ pointer: UnsafePointer<nw_tensor_view>?, ndim expected: Int, subject: String,
         layout: String) throws(NodeWriteError) {
        guard let pointer else { throw .invalidArgument("\(subject): the view is NULL") }
        let v = pointer.pointee
        guard let dtype = DType(rawValue: v.dtype) else {
            throw .unsupportedDType("\(subject): dtype = \(v.dtype) is not an nw_dtype")
        }
        guard v.ndim == expected else {
            let unit = v.ndim == 1 ? "dimension" : "dimensions"
            throw .shapeMismatch("\(subject): \(v.ndim) \(unit), expected \(expected) \(layout)")
        }
        guard let shapePointer = v.shape else { throw .invalidArgument("\(subject): shape is NULL") }
        var shape: [Int] = [], strides: [Int]? = nil
        shape.reserveCapacity(expected)
        for i in 0..<expected { shape.append(Int(shapePointer[i])) }
        if let s = v.strides { strides = (0..<expected).map { Int(s[$0]) } }
        try self.init(base: v.data, dtype: dtype, shape: shape, strides: strides, name: subject)
    }
}

/// A shape rule as messages write it, "(T, d_ff)"; the dimensions in `keyTokens` count key tokens (T_k).
func shapeText(_ dims: [Dim], keyTokens: Set<Int> = []) -> String {
    let parts = dims.enumerated().map { i, d in keyTokens.contains(i) ? "T_k" : "\(d.symbol)" }
    return "(" + parts.joined(separator: ", ") + (dims.count == 1 ? ",)" : ")")
}

extension ActivationLocation {
    /// Its shape as messages write it: "(T, T_k, n_heads) [query, key, head]" for attn.qk_probs.
    var shapeText: String {
        switch self {
        case .attnQKProbs: NodeWrite.shapeText(dims, keyTokens: [1]) + " [query, key, head]"
        case .attnValue: NodeWrite.shapeText(dims, keyTokens: [0])
        default: NodeWrite.shapeText(dims)
        }
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

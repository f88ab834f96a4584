/// A direction in the residual stream per token (TDB's "final residual grad", the loss
/// gradient at the input of the final layer norm): a (T, d_model) view, row t for writes
/// landing on token t, or one (d_model,) view for every token.
package struct Direction {
    package let view: TensorView
    /// One row for every token.
    package var shared: Bool { view.ndim == 1 }

    /// - Throws: `.shapeMismatch` unless the view is (d_model,) or (T, d_model).
    package init(_ view: TensorView, dModel: Int, tokens: Int) throws(NodeWriteError) {
        let ok = view.ndim == 1 ? view.shape[0] == dModel : (view.ndim == 2 && view.shape[0] == tokens && view.shape[1] == dModel)
        guard ok else {
            throw .shapeMismatch("direction: shape \(view.shapeArray) must be (T, d_model) = \([tokens, dModel]) or (d_model,) = (\(dModel),)")
        }
        self.view = view
    }

    /// The rows to use, as contiguous float32 (rows × d_model) scratch, with the token of each
    /// row: every token whose row is not all zero, or the one shared row (token -1).
    package func withRows<R>(_ body: (_ tokens: UnsafeBufferPointer<Int>, _ rows: F32Matrix) throws(NodeWriteError) -> R)
        throws(NodeWriteError) -> R {
        let dModel = view.shape[view.ndim - 1]
        let count = shared ? 1 : view.shape[0]
        let columnStride = view.strides[view.ndim - 1], rowStride = shared ? 0 : view.strides[0]
        return try withScratch(Int.self, count: count, "direction rows") { (tokens) throws(NodeWriteError) -> R in
            try withScratch(Float.self, count: count &* dModel, "direction rows") { (rows) throws(NodeWriteError) -> R in
                var used = 0
                let f32 = view.dtype == .float32 && columnStride == 1
                let base = view.base.map { $0.assumingMemoryBound(to: Float.self) }
                for t in 0..<count {
                    let row = rows + used &* dModel, offset = t &* rowStride
                    var nonzero = shared
                    if f32, let base {
                        // Float32 rows: find a non-zero entry first (zero rows cost one scan), copy then.
                        let source = base + offset
                        if !nonzero { for j in 0..<dModel where source[j] != 0 || source[j].isNaN { nonzero = true; break } }
                        if nonzero { row.update(from: source, count: dModel) }
                    } else {
                        for j in 0..<dModel {
                            let x = view.value(at: offset &+ j &* columnStride)
                            row[j] = x
                            if x != 0 || x.isNaN { nonzero = true }
                        }
                    }
                    if nonzero { tokens[used] = shared ? -1 : t; used &+= 1 }
                }
                return try body(UnsafeBufferPointer(start: tokens, count: used),
                                F32Matrix(base: rows, rowStride: dModel, columnStride: 1))
            }
        }
    }
}

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

    /// The rows to use, as float32 (rows × d_model, column stride 1), with the token of each row:
    /// every token whose row is not all zero, or the one shared row (token -1). Float32 rows
    /// that are consecutive (a dense direction, or one row) are read in place; others are
    /// gathered into scratch memory.
    package func withRows<R>(_ body: (_ tokens: UnsafeBufferPointer<Int>, _ rows: F32Matrix) throws(NodeWriteError) -> R)
        throws(NodeWriteError) -> R {
        let dModel = view.shape[view.ndim - 1]
        let count = shared ? 1 : view.shape[0]
        let columnStride = view.strides[view.ndim - 1], rowStride = shared ? 0 : view.strides[0]
        let f32 = view.dtype == .float32 && columnStride == 1 ? view.base?.assumingMemoryBound(to: Float.self) : nil
        return try withScratch(Int.self, count: count, "direction rows") { (tokens) throws(NodeWriteError) -> R in
            var used = 0
            for t in 0..<count where shared || isNonzero(row: t, f32, rowStride, columnStride, dModel) {
                tokens[used] = shared ? -1 : t
                used &+= 1
            }
            let list = UnsafeBufferPointer(start: tokens, count: used)
            if let f32, used == 0 || tokens[used &- 1] &- tokens[0] == used &- 1 || shared {
                let first = shared || used == 0 ? 0 : tokens[0]
                return try body(list, F32Matrix(base: f32 + first &* rowStride, rowStride: rowStride, columnStride: 1))
            }
            return try withScratch(Float.self, count: max(1, used) &* dModel, "direction rows") { (rows) throws(NodeWriteError) -> R in
                for (z, t) in list.enumerated() {
                    let offset = t &* rowStride
                    for j in 0..<dModel { rows[z &* dModel &+ j] = view.value(at: offset &+ j &* columnStride) }
                }
                return try body(list, F32Matrix(base: rows, rowStride: dModel, columnStride: 1))
            }
        }
    }

    /// Whether row t has an entry that is not ±0 (NaN counts).
    private func isNonzero(row t: Int, _ f32: UnsafePointer<Float>?, _ rowStride: Int, _ columnStride: Int, _ n: Int) -> Bool {
        if let f32 { return Kernels.anyNonzero(n, f32 + t &* rowStride) }
        let offset = t &* rowStride
        return (0..<n).contains { j in let x = view.value(at: offset &+ j &* columnStride); return x != 0 || x.isNaN }
    }
}

/// A float32 matrix as the kernels read it: a base pointer and element strides.
package struct F32Matrix {
    package let base: UnsafePointer<Float>
    package let rowStride: Int
    package let columnStride: Int

    @inline(__always) package func row(_ r: Int) -> F32Matrix {
        F32Matrix(base: base + r &* rowStride, rowStride: rowStride, columnStride: columnStride)
    }
}

extension TensorView {
    /// The (rows × columns) block at element `offset` with the given strides, as a float32
    /// matrix: read in place when the view holds float32, otherwise converted into
    /// contiguous scratch memory for the duration of `body` (float16 and bfloat16 convert
    /// exactly, so every dtype gives the bits its float32 values would).
    package func withF32Block<R>(offset: Int, rows: Int, columns: Int, rowStride: Int, columnStride: Int,
                                 _ body: (F32Matrix) throws(NodeWriteError) -> R) throws(NodeWriteError) -> R {
        if dtype == .float32 {
            let base = self.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self) + offset
            return try body(F32Matrix(base: base, rowStride: rowStride, columnStride: columnStride))
        }
        return try withScratch(Float.self, count: rows &* columns, "a float32 copy of a \(dtype.name) weight") {
            (copy: UnsafeMutablePointer<Float>) throws(NodeWriteError) -> R in
            for r in 0..<rows {
                let rowOffset = offset &+ r &* rowStride
                for c in 0..<columns { copy[r &* columns &+ c] = value(at: rowOffset &+ c &* columnStride) }
            }
            return try body(F32Matrix(base: UnsafePointer(copy), rowStride: columns, columnStride: 1))
        }
    }
}

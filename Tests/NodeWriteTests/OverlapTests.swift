@testable import NodeWriteCore
import Testing

/// The bytes a view can reach, against which outputs are checked: from its lowest element to
/// past its highest, with negative and zero strides, any dtype; nothing for an empty view.
@Suite("Output overlap")
struct OverlapTests {
    let bytes = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 64)

    func view(_ offset: Int, _ shape: [Int], _ strides: [Int]?, _ dtype: DType = .float32) -> TensorView {
        try! TensorView(base: UnsafeRawPointer(bytes + offset), dtype: dtype, shape: shape, strides: strides, name: "v")
    }

    func bounds(_ v: TensorView) -> Range<Int> {
        let base = Int(bitPattern: bytes)
        return Int(v.byteBounds.lowerBound) - base..<Int(v.byteBounds.upperBound) - base
    }

    @Test("byte bounds of contiguous, strided, negative-stride, broadcast and empty views")
    func byteBounds() {
        #expect(bounds(view(0, [3, 4], nil)) == 0..<48)
        #expect(bounds(view(8, [3, 4], [8, 2])) == 8..<(8 + (16 + 6) * 4 + 4))
        #expect(bounds(view(400, [3, 4], [-4, 1])) == (400 - 32)..<(400 + 16))
        #expect(bounds(view(400, [3, 4], [4, -1])) == (400 - 12)..<(400 + 36))
        #expect(bounds(view(100, [5, 6], [0, 0])) == 100..<104)
        #expect(bounds(view(100, [5, 6], nil, .float64)) == 100..<340)
        #expect(bounds(view(100, [5, 6], nil, .bfloat16)) == 100..<160)
        #expect(view(100, [0, 6], nil).byteBounds.isEmpty)
    }

    @Test("an output touching a view's first or last byte overlaps it; one just outside does not")
    func edges() throws {
        let v = view(64, [4, 4], nil)  // bytes 64 ..< 128
        let floats = (bytes + 0).assumingMemoryBound(to: Float.self)
        #expect(throws: NodeWriteError.self) { try OutputSpan(floats + 15, count: 2, "out").ensureDisjoint(from: v, "v") }
        #expect(throws: NodeWriteError.self) { try OutputSpan(floats + 31, count: 1, "out").ensureDisjoint(from: v, "v") }
        try OutputSpan(floats, count: 16, "out").ensureDisjoint(from: v, "v")
        try OutputSpan(floats + 32, count: 16, "out").ensureDisjoint(from: v, "v")
        try OutputSpan(floats + 20, count: 0, "out").ensureDisjoint(from: v, "v")
        try OutputSpan(nil as UnsafePointer<Float>?, count: 9, "out").ensureDisjoint(from: v, "v")
        let ints = (bytes + 56).assumingMemoryBound(to: Int64.self)
        #expect(throws: NodeWriteError.self) {
            try OutputSpan(ints, count: 2, "token_rows").ensureDisjoint(from: OutputSpan(floats + 17, count: 1, "out"))
        }
        try OutputSpan(ints, count: 2, "token_rows").ensureDisjoint(from: OutputSpan(floats + 18, count: 4, "out"))
    }
}

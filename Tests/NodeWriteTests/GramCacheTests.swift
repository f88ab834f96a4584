@testable import NodeWriteCore
import Testing

/// The pieces the Gram cache rests on: which views it may compare byte for byte (their span must
/// hold exactly their elements, or it would read bytes outside the view and miss changes), and
/// the snapshot budget.
@Suite("Gram cache")
struct GramCacheTests {
    let floats = UnsafeMutableRawPointer.allocate(byteCount: 4096 * 4, alignment: 64)

    func view(_ shape: [Int], _ strides: [Int]?, _ dtype: DType = .float32) -> TensorView {
        try! TensorView(base: UnsafeRawPointer(floats), dtype: dtype, shape: shape, strides: strides, name: "w")
    }

    @Test("contiguous layouts and their permutations tile one span; views with gaps, overlaps or negative strides do not")
    func spans() {
        let dense: [([Int], [Int]?, Int)] = [
            ([3, 4, 5], nil, 60), ([3, 4, 5], [20, 5, 1], 60),
            ([3, 4, 5], [4, 1, 12], 60),  // TDB's transposed W_O: (heads, d_head, d_model) over (d_model, heads·d_head)
            ([3, 4, 5], [1, 3, 12], 60), ([1, 4, 5], [999, 5, 1], 20), ([3, 1, 5], [5, 77, 1], 15), ([1, 1, 1], [0, 0, 0], 1),
        ]
        for (shape, strides, elements) in dense {
            let span = view(shape, strides).contiguousSpan
            #expect(span?.count == elements * 4, "\(shape) \(String(describing: strides))")
            #expect(span?.baseAddress == UnsafeRawPointer(floats))
        }
        let notDense: [([Int], [Int])] = [
            ([3, 4, 5], [40, 10, 2]),   // every other element
            ([3, 4, 5], [21, 5, 1]),    // padded rows
            ([3, 4, 5], [20, 5, 0]),    // broadcast
            ([3, 4, 5], [10, 5, 1]),    // overlapping rows
            ([2, 4, 5], [-20, 5, 1]),   // negative stride
            ([3, 4, 5], [4, 1, 11]),    // permuted, overlapping
        ]
        for (shape, strides) in notDense {
            #expect(view(shape, strides).contiguousSpan == nil, "\(shape) \(strides)")
        }
        #expect(view([3, 4, 5], nil, .float16).contiguousSpan?.count == 120)
        #expect(view([0, 4, 5], nil).contiguousSpan == nil)
    }

    @Test("the snapshot budget counts what it lets through and never goes over its limit")
    func budget() {
        let b = Budget(limit: 100)
        #expect(b.take(60))
        #expect(!b.take(41))
        #expect(b.take(40))
        #expect(!b.take(1))
        b.give(60)
        #expect(b.take(60))
        #expect(!b.take(Int.max))
        #expect(GramCache.snapshotLimit == 256 << 20)
    }
}

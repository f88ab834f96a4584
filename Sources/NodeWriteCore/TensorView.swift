/// A read-only, validated view of up to three dimensions over memory the library
/// does not own: base pointer, dtype, shape, and strides in elements (any sign).
///
/// Creating one proves that every element offset, and its byte offset from `base`,
/// is representable: indexing a view with in-range indices cannot overflow.
package struct TensorView: @unchecked Sendable {
    package static let maxDimensions = 3

    package let base: UnsafeRawPointer?
    package let dtype: DType
    package let ndim: Int
    /// Unused trailing dimensions have shape 1 and stride 0.
    package let shape: InlineArray<3, Int>
    package let strides: InlineArray<3, Int>
    package let count: Int

    /// Validates a view. `strides == nil` means contiguous row-major.
    /// - Throws: `.invalidArgument` for a negative shape, a NULL base with elements,
    ///   or an element count, offset or byte span that overflows.
    package init(base: UnsafeRawPointer?, dtype: DType, shape dims: [Int], strides given: [Int]?,
                name: String) throws(NodeWriteError) {
        precondition(dims.count <= Self.maxDimensions && (given == nil || given!.count == dims.count))
        var shape = InlineArray<3, Int>(repeating: 1)
        var strides = InlineArray<3, Int>(repeating: 0)
        var count = 1
        for i in 0..<dims.count {
            guard dims[i] >= 0 else {
                throw .invalidArgument("\(name): shape[\(i)] = \(dims[i]) is negative")
            }
            shape[i] = dims[i]
            let (c, o) = count.multipliedReportingOverflow(by: dims[i])
            guard !o else { throw .invalidArgument("\(name): element count overflows int64") }
            count = c
        }
        if let given {
            for i in 0..<dims.count { strides[i] = given[i] }
        } else {
            var s = 1
            for i in (0..<dims.count).reversed() {
                strides[i] = s
                s = s &* max(dims[i], 1)  // cannot overflow: the count did not
            }
        }
        if count > 0 {
            // The lowest and highest element offsets, and their byte offsets, must fit.
            var low = 0, high = 0
            for i in 0..<dims.count {
                let (reach, o) = strides[i].multipliedReportingOverflow(by: dims[i] - 1)
                guard !o else { throw .invalidArgument("\(name): strides[\(i)] × shape[\(i)] overflows int64") }
                var o2 = false
                if reach < 0 { (low, o2) = low.addingReportingOverflow(reach) } else { (high, o2) = high.addingReportingOverflow(reach) }
                guard !o2 else { throw .invalidArgument("\(name): element span overflows int64") }
            }
            let (lowBytes, o1) = low.multipliedReportingOverflow(by: dtype.itemSize)
            let (highBytes, o2) = high.multipliedReportingOverflow(by: dtype.itemSize)
            let (span, o3) = highBytes.subtractingReportingOverflow(lowBytes)
            guard !o1, !o2, !o3, span.addingReportingOverflow(dtype.itemSize).overflow == false else {
                throw .invalidArgument("\(name): byte span overflows int64")
            }
            guard let base else { throw .invalidArgument("\(name): data is NULL but the view has \(count) elements") }
            let address = UInt(bitPattern: Int(bitPattern: base))
            let lowOK = lowBytes >= 0 || UInt(lowBytes.magnitude) <= address
            let highOK = highBytes <= 0 || UInt(highBytes) <= UInt.max - address
            guard lowOK, highOK else { throw .invalidArgument("\(name): the view's byte range wraps the address space") }
        }
        self.base = base
        self.dtype = dtype
        self.ndim = dims.count
        self.shape = shape
        self.strides = strides
        self.count = count
    }

    /// The shape as an array of `ndim` entries (for messages and tests).
    package var shapeArray: [Int] { (0..<ndim).map { shape[$0] } }

    /// Element offset of (i, j, k); callers pass in-range indices (0 for unused dimensions).
    @inline(__always) package func offset(_ i: Int, _ j: Int = 0, _ k: Int = 0) -> Int {
        i &* strides[0] &+ j &* strides[1] &+ k &* strides[2]
    }

    /// The element at an in-range element offset, as Float.
    @inline(__always) package func value(at offset: Int) -> Float {
        let base = self.base.unsafelyUnwrapped
        switch dtype {
        case .float32: return base.loadUnaligned(fromByteOffset: offset &* 4, as: Float.self)
        case .float16: return Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: offset &* 2, as: UInt16.self)))
        case .bfloat16: return Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: offset &* 2, as: UInt16.self)) << 16)
        case .float64: return Float(base.loadUnaligned(fromByteOffset: offset &* 8, as: Double.self))
        }
    }
}

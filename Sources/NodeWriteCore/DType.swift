/// Element types a tensor view may hold. Raw values are the C ABI's.
package enum DType: Int32, TDBNamed {
    case float32 = 0
    case float16 = 1
    case bfloat16 = 2
    case float64 = 3

    package var name: StaticString {
        switch self {
        case .float32: "float32"
        case .float16: "float16"
        case .bfloat16: "bfloat16"
        case .float64: "float64"
        }
    }

    package var itemSize: Int {
        switch self {
        case .float32: 4
        case .float16, .bfloat16: 2
        case .float64: 8
        }
    }
}

/// Reads one element type as Float. Generic kernels are specialised per loader.
protocol ElementLoader {
    static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float
}

enum F32Loader: ElementLoader {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
    }
}

enum F16Loader: ElementLoader {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)))
    }
}

enum BF16Loader: ElementLoader {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)) << 16)
    }
}

enum F64Loader: ElementLoader {
    @inline(__always) static func load(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(base.loadUnaligned(fromByteOffset: index &* 8, as: Double.self))
    }
}

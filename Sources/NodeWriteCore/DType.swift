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

/// Why a node write could not be made. Each case maps to one status of the C ABI;
/// the message names the argument at fault.
public enum NodeWriteError: Error, Equatable, Sendable {
    case invalidArgument(String)
    case indexOutOfRange(String)
    case shapeMismatch(String)
    case unsupportedDType(String)
    case missingInput(String)
    case unsupported(String)
    case outOfMemory(String)
    case bufferTooSmall(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .indexOutOfRange(let m), .shapeMismatch(let m),
             .unsupportedDType(let m), .missingInput(let m), .unsupported(let m),
             .outOfMemory(let m), .bufferTooSmall(let m):
            return m
        }
    }

    /// The same error with `prefix` before its message (e.g. which node of a batch).
    public func prefixed(_ prefix: String) -> NodeWriteError {
        switch self {
        case .invalidArgument(let m): .invalidArgument(prefix + m)
        case .indexOutOfRange(let m): .indexOutOfRange(prefix + m)
        case .shapeMismatch(let m): .shapeMismatch(prefix + m)
        case .unsupportedDType(let m): .unsupportedDType(prefix + m)
        case .missingInput(let m): .missingInput(prefix + m)
        case .unsupported(let m): .unsupported(prefix + m)
        case .outOfMemory(let m): .outOfMemory(prefix + m)
        case .bufferTooSmall(let m): .bufferTooSmall(prefix + m)
        }
    }
}

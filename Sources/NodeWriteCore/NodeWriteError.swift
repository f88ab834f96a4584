import CNodeWrite

/// Why a node write could not be made: one status code of the C ABI (its raw value is the
/// `nw_status`, taken from the header) and a message that names what the caller passed.
/// A value with static members, like swift-system's `Errno`.
package struct NodeWriteError: Error, Equatable, Sendable {
    package let code: Code
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A status of the C ABI.
    package struct Code: RawRepresentable, Hashable, Sendable {
        package let rawValue: Int32
        package init(rawValue: Int32) { self.rawValue = rawValue }
        init(_ code: nw_status_code) { rawValue = code.rawValue }

        package static let invalidArgument = Code(NW_ERR_INVALID_ARGUMENT)
        package static let indexOutOfRange = Code(NW_ERR_INDEX_OUT_OF_RANGE)
        package static let shapeMismatch = Code(NW_ERR_SHAPE_MISMATCH)
        package static let unsupportedDType = Code(NW_ERR_UNSUPPORTED_DTYPE)
        package static let missingInput = Code(NW_ERR_MISSING_INPUT)
        package static let unsupported = Code(NW_ERR_UNSUPPORTED)
        package static let outOfMemory = Code(NW_ERR_OUT_OF_MEMORY)
        package static let bufferTooSmall = Code(NW_ERR_BUFFER_TOO_SMALL)
        package static let staleInput = Code(NW_ERR_STALE_INPUT)
    }

    package static func invalidArgument(_ m: String) -> Self { Self(.invalidArgument, m) }
    package static func indexOutOfRange(_ m: String) -> Self { Self(.indexOutOfRange, m) }
    package static func shapeMismatch(_ m: String) -> Self { Self(.shapeMismatch, m) }
    package static func unsupportedDType(_ m: String) -> Self { Self(.unsupportedDType, m) }
    package static func missingInput(_ m: String) -> Self { Self(.missingInput, m) }
    package static func unsupported(_ m: String) -> Self { Self(.unsupported, m) }
    package static func outOfMemory(_ m: String) -> Self { Self(.outOfMemory, m) }
    package static func bufferTooSmall(_ m: String) -> Self { Self(.bufferTooSmall, m) }
    package static func staleInput(_ m: String) -> Self { Self(.staleInput, m) }

    /// The same error with `prefix` before its message (e.g. which node of a set).
    package func prefixed(_ prefix: String) -> Self { Self(code, prefix + message) }
}

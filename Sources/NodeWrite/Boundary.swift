import CNodeWrite
import NodeWriteCore
import _NodeWriteShims

// The one place where errors cross the C boundary: a thrown NodeWriteError becomes
// a status and this thread's last-error message. Every export counts itself once in this
// thread's call count (nw_thread_call_count): through `boundary`, or through `counted` for the
// exports that cannot fail.

/// Runs `body`; a thrown error becomes its status and the last-error message. Counts one call.
@inline(__always)
func boundary(_ body: () throws(NodeWriteError) -> Void) -> nw_status {
    _nw_count_call()
    do {
        try body()
        return NW_OK.rawValue
    } catch {
        error.message.withCString { _nw_set_last_error($0) }
        return error.code.rawValue
    }
}

/// Runs the body of an export that returns no status (names, destroy, version, ...). Counts one call.
@inline(__always)
func counted<T>(_ body: () -> T) -> T {
    _nw_count_call()
    return body()
}

/// A required pointer argument, or `.invalidArgument` naming it.
@inline(__always)
func required<T>(_ pointer: T?, _ name: StaticString) throws(NodeWriteError) -> T {
    guard let pointer else { throw .invalidArgument("\(name) is NULL") }
    return pointer
}

/// A C enumeration value, or `.invalidArgument` naming it.
@inline(__always)
func decode<E: RawRepresentable>(_ raw: Int32, as: E.Type, _ name: StaticString) throws(NodeWriteError) -> E
where E.RawValue == Int32 {
    guard let value = E(rawValue: raw) else { throw .invalidArgument("\(name) = \(raw) is not a valid value") }
    return value
}

/// A StaticString as a C string (Swift emits string literals NUL-terminated).
func cString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// A size_t capacity as Int. Swift imports size_t as Int, so values of 2^63 and more
/// arrive negative; as capacities they are clamped to Int.max (no such memory exists).
@inline(__always)
func capacity(_ sizeT: Int) -> Int { sizeT < 0 ? Int.max : sizeT }

/// A caller's (pointer, capacity) output as a buffer.
func outputBuffer(_ out: UnsafeMutablePointer<Float>?, _ length: Int, _ name: StaticString) throws(NodeWriteError)
    -> UnsafeMutableBufferPointer<Float> {
    UnsafeMutableBufferPointer(start: try required(out, name), count: capacity(length))
}

/// NW_OUT_ZEROED or 0 as "the output holds zeros already?"; other bits are unknown flags.
func outputZeroed(_ flags: UInt32) throws(NodeWriteError) -> Bool {
    let known = UInt32(NW_OUT_ZEROED.rawValue)
    guard flags & ~known == 0 else { throw .invalidArgument("flags = \(flags): unknown bits (only NW_OUT_ZEROED = \(known))") }
    return flags & known != 0
}

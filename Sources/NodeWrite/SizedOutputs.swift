import CNodeWrite
import NodeWriteCore

// The two sized-output protocols of nodewrite.h, one helper each:
// - `writeSized`: the info and state structs, led by a size field and append-only;
// - `SizedArray.deliver`: float arrays whose shape is reported (out_shape, out_ndim) on NW_OK and
//   on NW_ERR_BUFFER_TOO_SMALL.

/// Writes `value` into the caller's size-led struct `out` (the header's "facts" protocol): the
/// caller's out->size says how many bytes it has; the first min(that, sizeof(T)) bytes are
/// written, out->size becomes that number, and bytes past it are not touched.
/// - Throws: `.invalidArgument` for NULL or an out->size below `firstVersion` (the struct's size
///   when it entered the header); nothing is written then.
func writeSized<T>(_ out: UnsafeMutablePointer<T>?, firstVersion: Int = MemoryLayout<T>.size,
                   _ value: () throws(NodeWriteError) -> T) throws(NodeWriteError) {
    let raw = UnsafeMutableRawPointer(try required(out, "out"))
    let callerSize = capacity(raw.loadUnaligned(as: Int.self))
    guard callerSize >= firstVersion else {
        throw .invalidArgument("out->size = \(callerSize) is less than sizeof(\(T.self)) = \(firstVersion): set out->size = sizeof(\(T.self)) first")
    }
    var filled = try value()
    let count = min(callerSize, MemoryLayout<T>.size)
    withUnsafeMutableBytes(of: &filled) { bytes in
        bytes.storeBytes(of: count, as: Int.self)  // every such struct starts with size_t size
        raw.copyMemory(from: bytes.baseAddress.unsafelyUnwrapped, byteCount: count)
    }
}

/// The row of a table for a C enum value: `.indexOutOfRange` when it is not in the table.
func row<E: RawRepresentable & CaseIterable>(_ raw: Int32, _: E.Type, _ name: StaticString) throws(NodeWriteError) -> E
where E.RawValue == Int32 {
    guard let value = E(rawValue: raw) else {
        throw .indexOutOfRange("\(name) = \(raw) is not in the table (0 ..< \(E.allCases.count))")
    }
    return value
}

/// Up to four values as a C array of four, `fill` after them.
func four<T>(_ values: [T], _ fill: T) -> (T, T, T, T) {
    func at(_ i: Int) -> T { i < values.count ? values[i] : fill }
    return (at(0), at(1), at(2), at(3))
}

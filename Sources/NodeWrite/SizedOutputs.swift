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

/// The shape of an output of up to three dimensions, without heap memory (the warm derive
/// paths allocate nothing).
struct OutputShape {
    var sizes = InlineArray<3, Int>(repeating: 0)
    let rank: Int

    init(_ rows: Int, _ columns: Int) {
        sizes[0] = rows
        sizes[1] = columns
        rank = 2
    }

    init(_ array: [Int]) {
        rank = min(array.count, 3)
        for i in 0..<rank { sizes[i] = array[i] }
    }

    var description: String { "\((0..<rank).map { sizes[$0] })" }
}

/// A caller's float output with a reported shape: out (capacity out_len), out_shape (rank
/// entries) and, when the call has one, out_ndim.
struct SizedArray {
    let out: UnsafeMutablePointer<Float>?
    let outLen: Int
    let shape: UnsafeMutablePointer<Int64>?
    var ndim: UnsafeMutablePointer<Int32>? = nil

    /// The protocol: out may be NULL only when out_len is 0; the shape outputs must share no
    /// byte with any input (`checkInputs` checks one output span against them) nor with out or
    /// each other; then the shape (and rank) is written, and `write` runs only when out holds
    /// the shape's elements (else `.bufferTooSmall`, the shape written, out untouched).
    func deliver(_ dims: OutputShape, checkInputs: (OutputSpan) throws(NodeWriteError) -> Void,
                 write: (UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) -> Void) throws(NodeWriteError) {
        guard out != nil || outLen == 0 else { throw .invalidArgument("out is NULL but out_len is \(UInt(bitPattern: outLen))") }
        var count = 1
        for i in 0..<dims.rank {
            let (c, o) = count.multipliedReportingOverflow(by: dims.sizes[i])
            guard !o else { throw .bufferTooSmall("out: no buffer holds an output of shape \(dims.description)") }
            count = c
        }
        let capacity = out == nil ? 0 : NodeWrite.capacity(outLen)
        let outSpan = OutputSpan(out, count: min(capacity, count), "out")
        let shapeSpan = OutputSpan(shape, count: dims.rank, "out_shape"), ndimSpan = OutputSpan(ndim, count: 1, "out_ndim")
        try checkInputs(shapeSpan)
        try checkInputs(ndimSpan)
        try shapeSpan.ensureDisjoint(from: outSpan)
        try ndimSpan.ensureDisjoint(from: outSpan)
        try ndimSpan.ensureDisjoint(from: shapeSpan)
        for i in 0..<dims.rank { shape?[i] = Int64(dims.sizes[i]) }
        ndim?.pointee = Int32(dims.rank)
        guard let out, capacity >= count else {
            throw .bufferTooSmall("out: capacity \(capacity) is less than the \(count) floats of shape \(dims.description)")
        }
        try write(UnsafeMutableBufferPointer(start: out, count: capacity))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor of a safetensors file, validated against the file: its byte range
/// [begin, end) lies inside the data section and matches shape × item size.
package struct SafetensorsEntry: Sendable {
    package let name: String
    /// The dtype as written ("F32", "I64", ...).
    package let dtypeName: String
    /// The dtype when nodewrite reads it (F32, F16, BF16, F64), else nil.
    package let dtype: DType?
    package let shape: [Int]
    package let count: Int
    /// Byte offsets from the start of the file.
    package let begin: Int, end: Int
}

/// A safetensors file: an 8-byte little-endian header length N, N bytes of JSON header
/// (name → {"dtype", "shape", "data_offsets"}, optionally "__metadata__": string → string),
/// then the data section. Parsing trusts nothing in the file.
///
/// A file on disk is read, never mapped (see `CheckpointFile.swift`): the header when it is
/// opened, each tensor into memory of its own when a view of it is first asked for, and
/// `ensureUnchanged()` then tells whether the file changed while it was read.
package final class SafetensorsFile: @unchecked Sendable {
    /// The whole file (in memory), or its first 8 + N bytes (a file on disk).
    package let bytes: FileBytes
    /// The file on disk the tensors are read from; nil when `bytes` is the whole file.
    private let file: CheckpointFile?
    /// Tensors read from `file`, by their first byte.
    private var tensors: [Int: FileBytes] = [:]
    /// Tensors in header order.
    package let entries: [SafetensorsEntry]
    package let metadata: [String: String]
    /// Where the data section begins (8 + N).
    package let dataStart: Int
    /// What the file is called in messages (its path).
    package let label: String
    private let index: [String: Int]

    /// The largest header accepted (as the reference implementation: 100 MB).
    package static let maxHeaderBytes = 100_000_000
    /// The most dimensions of one tensor.
    package static let maxDimensions = 32

    /// Bits per element of every dtype the safetensors format defines.
    package static let dtypeBits: [String: Int] = [
        "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
        "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
        "I32": 32, "U32": 32, "F32": 32,
        "I64": 64, "U64": 64, "F64": 64, "C64": 64,
        "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    ]

    /// Opens the file at `path` and reads and parses its header (the tensors are read when used).
    package convenience init(path: String) throws(NodeWriteError) {
        let file = try CheckpointFile(path: path)
        let size = file.size
        // The header length, then the header it announces when that lies inside the file and the
        // limit (otherwise the parser reports the problem from the 8 bytes alone).
        var bytes = try file.read(0..<min(8, size), "the header length")
        if size >= 8 {
            var n: UInt64 = 0
            for i in 0..<8 { n |= UInt64(bytes.base.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
            if n <= UInt64(size - 8), n <= UInt64(SafetensorsFile.maxHeaderBytes) {
                bytes = try file.read(0..<(8 + Int(n)), "the header")
            }
        }
        try self.init(bytes: bytes, size: size, label: path, file: file)
    }

    /// Parses `bytes`, a whole file in memory (which this file then holds).
    /// - Throws: `.invalidArgument` for a malformed file (naming `label` and the problem),
    ///   `.unsupportedDType` for a dtype string the format does not define.
    package convenience init(bytes: FileBytes, label: String) throws(NodeWriteError) {
        try self.init(bytes: bytes, size: bytes.count, label: label, file: nil)
    }

    /// Parses a file of `size` bytes whose first bytes are `bytes` (all of them, or at least the
    /// 8 + N of its header when `file` is where the rest is read from).
    private init(bytes: FileBytes, size: Int, label: String, file: CheckpointFile?) throws(NodeWriteError) {
        self.bytes = bytes
        self.file = file
        self.label = label
        func bad(_ problem: String) -> NodeWriteError { .invalidArgument("\(label): \(problem)") }
        guard size >= 8 else {
            throw bad("the file is \(size) bytes, shorter than the 8-byte header length")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes.base.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
        guard n <= UInt64(size - 8) else {
            throw bad("the header length \(n) runs past the end of the file (\(size - 8) bytes follow it)")
        }
        guard n <= UInt64(SafetensorsFile.maxHeaderBytes) else {
            throw bad("the header length \(n) exceeds the limit of \(SafetensorsFile.maxHeaderBytes) bytes")
        }
        let headerLength = Int(n)
        guard headerLength >= 2 else { throw bad("the header length \(n) is too small for a JSON object") }
        guard bytes.count >= 8 + headerLength else { throw bad("the header could not be read in full") }
        dataStart = 8 + headerLength
        let dataSize = size - dataStart
        let header = UnsafeRawBufferPointer(start: bytes.base + 8, count: headerLength)
        guard header[0] == UInt8(ascii: "{") else { throw bad("the header does not start with '{'") }
        var limits = JSONLimits()
        limits.maxDepth = 8
        let json = try parseJSON(header, what: "\(label): header", limits: limits)
        guard case .object(let members) = json else { throw bad("the header is not a JSON object") }

        var entries: [SafetensorsEntry] = []
        var metadata: [String: String] = [:]
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw bad("__metadata__ is \(value.kindName), not an object") }
                for (key, v) in pairs {
                    guard let s = v.string else {
                        throw bad("__metadata__[\"\(clip(key))\"] is \(v.kindName), not a string")
                    }
                    metadata[key] = s
                }
                continue
            }
            let what = "tensor \"\(clip(name))\""
            guard case .object = value else { throw bad("\(what) is \(value.kindName), not an object") }
            guard let dtypeValue = value["dtype"], let dtypeName = dtypeValue.string else {
                throw bad("\(what) has no \"dtype\" string")
            }
            guard let bits = SafetensorsFile.dtypeBits[dtypeName] else {
                throw .unsupportedDType("\(label): \(what) has dtype \"\(clip(dtypeName))\", which safetensors does not define")
            }
            guard case .array(let dims)? = value["shape"] else { throw bad("\(what) has no \"shape\" array") }
            guard dims.count <= SafetensorsFile.maxDimensions else {
                throw bad("\(what) has \(dims.count) dimensions (at most \(SafetensorsFile.maxDimensions))")
            }
            var shape: [Int] = []
            var count = 1
            for (i, d) in dims.enumerated() {
                guard let v = d.integer, v >= 0 else {
                    throw bad("\(what): shape[\(i)] is not a non-negative int64 integer")
                }
                let (c, o) = count.multipliedReportingOverflow(by: v)
                guard !o else { throw bad("\(what): the element count of shape \(dims.map { $0.integer ?? -1 }) overflows int64") }
                shape.append(v)
                count = c
            }
            let (totalBits, o) = count.multipliedReportingOverflow(by: bits)
            guard !o else { throw bad("\(what): the byte size of shape \(shape) overflows int64") }
            guard totalBits % 8 == 0 else {
                throw bad("\(what): \(count) elements of \(bits) bits are not a whole number of bytes")
            }
            let nbytes = totalBits / 8
            guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2,
                  let begin = offsets[0].integer, let end = offsets[1].integer else {
                throw bad("\(what): \"data_offsets\" is not an array of two int64 integers [begin, end]")
            }
            guard begin >= 0, begin <= end else {
                throw bad("\(what): data_offsets [\(begin), \(end)] are not 0 <= begin <= end")
            }
            guard end <= dataSize else {
                throw bad("\(what): data_offsets [\(begin), \(end)] point past the end of the data (\(dataSize) bytes)")
            }
            guard end - begin == nbytes else {
                throw bad("\(what): data_offsets [\(begin), \(end)] hold \(end - begin) bytes, "
                          + "but shape \(shape) of \(dtypeName) needs \(nbytes)")
            }
            let dtype: DType? = switch dtypeName {
            case "F32": .float32
            case "F16": .float16
            case "BF16": .bfloat16
            case "F64": .float64
            default: nil
            }
            entries.append(SafetensorsEntry(name: name, dtypeName: dtypeName, dtype: dtype, shape: shape,
                                            count: count, begin: dataStart + begin, end: dataStart + end))
        }
        // No two tensors may share a byte.
        let order = entries.indices.sorted { (entries[$0].begin, entries[$0].end) < (entries[$1].begin, entries[$1].end) }
        var reach = dataStart
        var holder: Int? = nil
        for i in order where entries[i].end > entries[i].begin {
            if entries[i].begin < reach, let h = holder {
                throw bad("tensor \"\(clip(entries[i].name))\" overlaps tensor \"\(clip(entries[h].name))\" "
                          + "(data_offsets [\(entries[i].begin - dataStart), \(entries[i].end - dataStart)] and "
                          + "[\(entries[h].begin - dataStart), \(entries[h].end - dataStart)])")
            }
            reach = entries[i].end
            holder = i
        }
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }  // names are unique (the JSON reader checks)
        self.entries = entries
        self.metadata = metadata
        self.index = index
    }

    package subscript(name: String) -> SafetensorsEntry? { index[name].map { entries[$0] } }

    /// The tensor `name`, or `.missingInput`.
    package func require(_ name: String) throws(NodeWriteError) -> SafetensorsEntry {
        guard let e = self[name] else { throw .missingInput("\(label): tensor \(name) is not in the file") }
        return e
    }

    /// A view of `entry`'s elements, as stored (shape nil) or reinterpreted with `shape` and
    /// element `strides` (nil = row-major), starting `offset` elements after the tensor's first,
    /// that stay within the tensor's elements.
    /// - Throws: `.unsupportedDType` for a dtype nodewrite does not read; `.shapeMismatch`
    ///   when the reinterpretation would leave the tensor.
    package func view(_ entry: SafetensorsEntry, shape: [Int]? = nil, strides: [Int]? = nil,
                      offset: Int = 0) throws(NodeWriteError) -> TensorView {
        guard let dtype = entry.dtype else {
            throw .unsupportedDType("\(label): tensor \(entry.name) has dtype \(entry.dtypeName); "
                                    + "nodewrite reads F32, F16, BF16 and F64")
        }
        let shape = shape ?? entry.shape
        guard shape.count <= TensorView.maxDimensions else {
            throw .shapeMismatch("\(label): tensor \(entry.name) has shape \(shape), more than 3 dimensions")
        }
        guard offset >= 0, offset <= entry.count else {
            throw .shapeMismatch("\(label): tensor \(entry.name): element offset \(offset) is outside its \(entry.count) elements")
        }
        if let strides {
            // Every element offset the view can form must lie in [0, count).
            var high = offset, empty = false
            for (s, n) in zip(strides, shape) {
                if n == 0 { empty = true }
                guard s >= 0 else { throw .shapeMismatch("\(entry.name): negative stride") }
                let (r, o1) = s.multipliedReportingOverflow(by: max(n - 1, 0))
                let (h, o2) = high.addingReportingOverflow(r)
                guard !o1, !o2 else { throw .shapeMismatch("\(entry.name): strides overflow") }
                high = h
            }
            guard empty || high < entry.count else {
                throw .shapeMismatch("\(label): tensor \(entry.name) of shape \(entry.shape) cannot be viewed as \(shape)")
            }
        } else {
            var c = 1
            for n in shape {
                let (p, o) = c.multipliedReportingOverflow(by: n)
                guard !o else { throw .shapeMismatch("\(entry.name): element count overflows") }
                c = p
            }
            guard offset == 0 ? c == entry.count : c <= entry.count - offset else {
                throw .shapeMismatch("\(label): tensor \(entry.name) of shape \(entry.shape) cannot be viewed as \(shape)")
            }
        }
        return try TensorView(base: data(entry) + offset * dtype.itemSize, dtype: dtype, shape: shape, strides: strides,
                              name: "tensor \(entry.name)")
    }

    /// Where `entry`'s bytes are in memory: in `bytes`, or read from the file now (once).
    private func data(_ entry: SafetensorsEntry) throws(NodeWriteError) -> UnsafeRawPointer {
        guard let file else { return bytes.base + entry.begin }
        if let read = tensors[entry.begin] { return read.base }
        let read = try file.read(entry.begin..<entry.end, "tensor \(clip(entry.name))")
        tensors[entry.begin] = read
        return read.base
    }

    /// What keeps the memory of `entry`'s views alive: the memory it was read into, or `bytes`.
    package func owner(of entry: SafetensorsEntry) -> AnyObject { tensors[entry.begin] ?? bytes }

    /// - Throws: `.staleInput` when the file on disk changed since it was opened (see
    ///   `CheckpointFile.ensureUnchanged`); nothing for a file in memory.
    package func ensureUnchanged() throws(NodeWriteError) { try file?.ensureUnchanged() }

    /// Whether `view` may be borrowed in place: its data is aligned to its item size (the
    /// format does not promise that; a misaligned tensor is copied instead).
    package func borrowable(_ view: TensorView) -> Bool {
        guard let base = view.base else { return true }
        return Int(bitPattern: base) % view.dtype.itemSize == 0
    }
}

/// Reads a small file (a JSON config) into memory.
/// - Throws: `.invalidArgument` when it cannot be read or is larger than `limit` bytes;
///   `.staleInput` when it changed while it was read.
package func readSmallFile(_ path: String, limit: Int = 16 << 20) throws(NodeWriteError) -> FileBytes {
    let file = try CheckpointFile(path: path)
    guard file.size <= limit else { throw .invalidArgument("\(path): \(file.size) bytes, more than \(limit) for a config file") }
    let bytes = try file.read(0..<file.size, "the file")
    try file.ensureUnchanged()
    return bytes
}

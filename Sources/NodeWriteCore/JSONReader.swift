/// A small, strict JSON reader for safetensors headers and the config files next to them
/// (`config.json`, SAELens' `cfg.json`). No Foundation: the release library links the
/// Swift runtime statically and stays self-contained.
///
/// Hostile input is an error, never a trap: the text must be UTF-8 (checked up front),
/// nesting is bounded (`maxDepth`), so are a string's length, a number's length and the
/// number of values, and an object with a repeated key is rejected.
package indirect enum JSONValue: Equatable, Sendable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    /// A number as its (validated) text; `integer` reads it exactly.
    case number(String)
    case bool(Bool)
    case null

    package static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(x), .array(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.bool(x), .bool(y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// The member `key` of an object (nil for other values or an absent key).
    package subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    package var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The number as an Int when it is written as an integer (`-?[0-9]+`) that fits in
    /// Int64; nil otherwise (fractions, exponents, out of range, not a number).
    package var integer: Int? {
        guard case .number(let text) = self else { return nil }
        var negative = false, value = 0, digits = 0
        for (i, c) in text.utf8.enumerated() {
            if i == 0 && c == UInt8(ascii: "-") { negative = true; continue }
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let d = Int(c - 0x30)
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            guard !o1, !o2 else { return nil }
            value = s
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// A short description for messages ("a string", "an array", ...).
    package var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

package struct JSONLimits: Sendable {
    /// Nesting of arrays and objects (a safetensors header needs 3).
    package var maxDepth = 64
    /// Bytes of one string, after unescaping.
    package var maxStringBytes = 1 << 20
    /// Characters of one number.
    package var maxNumberLength = 64
    /// Values in the whole document.
    package var maxValues = 1 << 22
    package init() {}
}

/// Parses `bytes` as one JSON value (surrounded by optional whitespace).
/// - Throws: `.invalidArgument` naming `what`, the byte offset and the problem.
package func parseJSON(_ bytes: UnsafeRawBufferPointer, what: String,
                       limits: JSONLimits = JSONLimits()) throws(NodeWriteError) -> JSONValue {
    guard String(validating: bytes, as: UTF8.self) != nil else {
        throw .invalidArgument("\(what) is not valid UTF-8")
    }
    var parser = JSONParser(bytes: bytes, what: what, limits: limits)
    parser.skipSpace()
    let value = try parser.value(depth: 0)
    parser.skipSpace()
    guard parser.at == bytes.count else { throw parser.fail("unexpected data after the JSON value") }
    return value
}

struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let what: String
    let limits: JSONLimits
    var at = 0
    var values = 0

    init(bytes: UnsafeRawBufferPointer, what: String, limits: JSONLimits) {
        self.bytes = bytes; self.what = what; self.limits = limits
    }

    func fail(_ problem: String) -> NodeWriteError {
        .invalidArgument("\(what): malformed JSON at byte \(at): \(problem)")
    }

    var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { at += 1 }
    }

    mutating func expect(_ c: UInt8, _ name: String) throws(NodeWriteError) {
        guard peek == c else { throw fail("expected \(name)") }
        at += 1
    }

    mutating func value(depth: Int) throws(NodeWriteError) -> JSONValue {
        values += 1
        guard values <= limits.maxValues else { throw fail("more than \(limits.maxValues) values") }
        guard let c = peek else { throw fail("unexpected end of text") }
        switch c {
        case UInt8(ascii: "{"):
            guard depth < limits.maxDepth else { throw fail("nesting deeper than \(limits.maxDepth)") }
            at += 1
            var members: [(key: String, value: JSONValue)] = []
            var seen = Set<String>()
            skipSpace()
            if peek == UInt8(ascii: "}") { at += 1; return .object(members) }
            while true {
                skipSpace()
                guard peek == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try string()
                guard seen.insert(key).inserted else { throw fail("duplicate key \"\(clip(key))\"") }
                skipSpace()
                try expect(UInt8(ascii: ":"), "':'")
                skipSpace()
                members.append((key, try value(depth: depth + 1)))
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect(UInt8(ascii: "}"), "',' or '}'")
                return .object(members)
            }
        case UInt8(ascii: "["):
            guard depth < limits.maxDepth else { throw fail("nesting deeper than \(limits.maxDepth)") }
            at += 1
            var items: [JSONValue] = []
            skipSpace()
            if peek == UInt8(ascii: "]") { at += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                if peek == UInt8(ascii: ",") { at += 1; continue }
                try expect(UInt8(ascii: "]"), "',' or ']'")
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try number())
        default:
            throw fail("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(NodeWriteError) {
        let n = word.utf8CodeUnitCount
        guard bytes.count - at >= n else { throw fail("unexpected end of text") }
        for i in 0..<n where bytes[at + i] != word.utf8Start[i] { throw fail("expected \(word)") }
        at += n
    }

    /// A number per RFC 8259's grammar, returned as its text.
    mutating func number() throws(NodeWriteError) -> String {
        let start = at
        func digit(_ c: UInt8?) -> Bool { c.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if peek == UInt8(ascii: "-") { at += 1 }
        guard digit(peek) else { throw fail("expected a digit") }
        if peek == UInt8(ascii: "0") { at += 1 } else { while digit(peek) { at += 1 } }
        if peek == UInt8(ascii: ".") {
            at += 1
            guard digit(peek) else { throw fail("expected a digit after '.'") }
            while digit(peek) { at += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            at += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
            guard digit(peek) else { throw fail("expected a digit in the exponent") }
            while digit(peek) { at += 1 }
        }
        guard at - start <= limits.maxNumberLength else {
            at = start
            throw fail("a number longer than \(limits.maxNumberLength) characters")
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
    }

    /// A string (the opening quote is at `at`), unescaped; the text is already known to be UTF-8.
    mutating func string() throws(NodeWriteError) -> String {
        let start = at
        at += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            guard out.count <= limits.maxStringBytes else {
                at = start
                throw fail("a string longer than \(limits.maxStringBytes) bytes")
            }
            at += 1
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw fail("unterminated escape") }
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard peek == UInt8(ascii: "\\") else { throw fail("a lone surrogate \\u escape (not UTF-8)") }
                        at += 1
                        guard peek == UInt8(ascii: "u") else { throw fail("a lone surrogate \\u escape (not UTF-8)") }
                        at += 1
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("a lone surrogate \\u escape (not UTF-8)") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("a lone surrogate \\u escape (not UTF-8)")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("an invalid \\u escape") }
                    out.append(contentsOf: String(Character(u)).utf8)
                default:
                    throw fail("an invalid escape")
                }
            default:
                guard c >= 0x20 else { throw fail("a control character in a string") }
                out.append(c)
            }
        }
    }

    mutating func hex4() throws(NodeWriteError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek else { throw fail("unterminated \\u escape") }
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("a non-hex digit in a \\u escape")
            }
            v = v << 4 | d
            at += 1
        }
        return v
    }
}

/// A string cut to a length fit for an error message.
func clip(_ s: String, _ n: Int = 80) -> String {
    s.utf8.count <= n ? s : String(decoding: Array(s.utf8.prefix(n)), as: UTF8.self) + "…"
}

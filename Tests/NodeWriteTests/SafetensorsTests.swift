import CNodeWrite
import Foundation
@testable import NodeWriteCore
import Testing

/// Writes safetensors files for tests: tensors laid out one after another in header order.
struct STWriter {
    struct Tensor { let name: String; let dtype: String; let shape: [Int]; let data: [UInt8] }
    var tensors: [Tensor] = []
    var metadata: [String: String]? = nil

    mutating func add(_ name: String, _ shape: [Int], dtype: String = "F32", values: [Float]? = nil) {
        let count = shape.reduce(1, *)
        let item = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "BOOL": 1][dtype] ?? 4
        var data: [UInt8] = []
        for i in 0..<count {
            let v = values?[i] ?? Float(i % 17) * 0.25 - 1
            switch dtype {
            case "F32": withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 }
            case "F16": withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { data += $0 }
            case "F64": withUnsafeBytes(of: Double(v).bitPattern.littleEndian) { data += $0 }
            default: data += [UInt8](repeating: UInt8(i & 0xff), count: item)
            }
        }
        tensors.append(Tensor(name: name, dtype: dtype, shape: shape, data: data))
    }

    func header() -> String {
        var parts: [String] = []
        if let metadata {
            let m = metadata.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(m)}")
        }
        var at = 0
        for t in tensors {
            parts.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":\(t.shape),\"data_offsets\":[\(at),\(at + t.data.count)]}")
            at += t.data.count
        }
        return "{" + parts.joined(separator: ",") + "}"
    }

    /// The file; the header padded with spaces to a multiple of 8 (as the reference writer does).
    func bytes() -> [UInt8] {
        var h = Array(header().utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        return STWriter.file(header: h, data: tensors.flatMap(\.data))
    }

    static func file(header: [UInt8], data: [UInt8], length: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { out += $0 }
        return out + header + data
    }

    static func file(_ header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        file(header: Array(header.utf8), data: data, length: length)
    }
}

/// Parses bytes in memory.
func parseST(_ bytes: [UInt8]) throws -> SafetensorsFile {
    let owned = try bytes.withUnsafeBytes { try FileBytes(copying: $0) }
    return try SafetensorsFile(bytes: owned, label: "test")
}

/// A fresh temporary directory.
func tempDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("nw-st-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Safetensors reader")
struct SafetensorsTests {
    static let checkpoints = Fixture.directory.appendingPathComponent("checkpoints").path

    // MARK: the reader

    @Test func readsWhatTheWriterWrote() throws {
        var w = STWriter()
        w.metadata = ["format": "pt", "n_head": "4"]
        w.add("a", [2, 3])
        w.add("b", [4], dtype: "F16")
        w.add("c", [], dtype: "F64")
        w.add("d", [3], dtype: "I64")
        w.add("empty", [0, 5])
        let f = try parseST(w.bytes())
        #expect(f.entries.map(\.name) == ["a", "b", "c", "d", "empty"])
        #expect(f.metadata == ["format": "pt", "n_head": "4"])
        let a = try #require(f["a"])
        #expect(a.shape == [2, 3] && a.dtype == .float32 && a.end - a.begin == 24)
        let v = try f.view(a)
        let got: [Float] = (0..<6).map { v.value(at: $0) }
        let want: [Float] = (0..<6).map { Float($0 % 17) * 0.25 - 1 }
        #expect(got == want)
        #expect(try f.view(#require(f["b"])).dtype == .float16)
        #expect(try f.view(#require(f["c"])).count == 1)
        #expect(throws: NodeWriteError.self) { try f.view(#require(f["d"])) }
        do { _ = try f.view(#require(f["d"])) } catch let error as NodeWriteError { #expect(error.code == .unsupportedDType) }
    }

    @Test func jsonReader() throws {
        func parse(_ s: String) throws -> JSONValue {
            let bytes = Array(s.utf8)
            return try bytes.withUnsafeBytes { try parseJSON($0, what: "t") }
        }
        #expect(try parse(#" {"a": [1, -2, 3.5e+2, true, false, null], "b": "x\u00e9\ud83d\ude00\n"} "#)
                == .object([("a", .array([.number("1"), .number("-2"), .number("3.5e+2"), .bool(true), .bool(false), .null])),
                            ("b", .string("xé😀\n"))]))
        #expect(JSONValue.number("9223372036854775807").integer == Int.max)
        #expect(JSONValue.number("-9223372036854775808").integer == Int.min)
        #expect(JSONValue.number("9223372036854775808").integer == nil)
        #expect(JSONValue.number("1e3").integer == nil)
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "tru", "{\"a\":1 \"b\":2}",
                    "{\"a\":1,\"a\":2}", "\"\\ud800\"", "\"\\udc00\"", "[1] 2", "nul"] {
            #expect(throws: NodeWriteError.self, "\(bad)") { try parse(bad) }
        }
        // Depth: 64 levels parse, 65 do not, and 100 000 fail cleanly (no stack overflow).
        #expect(throws: Never.self) { try parse(String(repeating: "[", count: 64) + String(repeating: "]", count: 64)) }
        #expect(throws: NodeWriteError.self) { try parse(String(repeating: "[", count: 65) + String(repeating: "]", count: 65)) }
        #expect(throws: NodeWriteError.self) { try parse(String(repeating: "[", count: 100_000)) }
    }

    /// A hostile file, the status it must give, and (a fragment of) its message.
    struct Row: CustomTestStringConvertible, Sendable {
        let what: String
        let bytes: [UInt8]
        let code: NodeWriteError.Code
        let says: String
        var testDescription: String { what }
    }

    static let ok1 = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    static func tensor(name: String = "a", dtype: String = "F32", shape: String = "[2]", offsets: String = "[0,8]") -> String {
        "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":\(offsets)}"
    }
    static func one(_ fields: String, data: Int = 8) -> [UInt8] { STWriter.file("{" + fields + "}", data: [UInt8](repeating: 0, count: data)) }

    static let rows: [Row] = {
        let INV = NodeWriteError.Code.invalidArgument, DT = NodeWriteError.Code.unsupportedDType
        var r: [Row] = [
            Row(what: "empty file", bytes: [], code: INV, says: "shorter than the 8-byte"),
            Row(what: "7 bytes", bytes: [2, 0, 0, 0, 0, 0, 0], code: INV, says: "shorter than the 8-byte"),
            Row(what: "header length 2^63", bytes: STWriter.file(ok1, data: [UInt8](repeating: 0, count: 8), length: 1 << 63),
                code: INV, says: "runs past the end"),
            Row(what: "header length 2^64-1", bytes: STWriter.file(ok1, length: .max), code: INV, says: "runs past the end"),
            Row(what: "header length one past the file", bytes: STWriter.file(ok1, length: UInt64(ok1.utf8.count) + 1),
                code: INV, says: "runs past the end"),
            Row(what: "header length 0", bytes: STWriter.file("", data: [0x7b, 0x7d]), code: INV, says: "too small"),
            Row(what: "header not starting with {", bytes: STWriter.file(" {}"), code: INV, says: "does not start"),
            Row(what: "header not UTF-8", bytes: STWriter.file(header: Array("{\"".utf8) + [0xff, 0xfe] + Array("\":1}".utf8), data: []),
                code: INV, says: "not valid UTF-8"),
            Row(what: "truncated JSON", bytes: STWriter.file("{\"a\":"), code: INV, says: "malformed JSON"),
            Row(what: "garbage after the object", bytes: STWriter.file("{}x"), code: INV, says: "after the JSON value"),
            Row(what: "header is an array-looking object", bytes: STWriter.file("{[]}"), code: INV, says: "malformed JSON"),
            Row(what: "duplicate tensor names", bytes: one(tensor() + "," + tensor(offsets: "[8,16]"), data: 16), code: INV, says: "duplicate key"),
            Row(what: "name with a lone surrogate escape", bytes: one(tensor(name: "\\ud800")), code: INV, says: "surrogate"),
            Row(what: "control character in a name", bytes: one(tensor(name: "a\u{01}")), code: INV, says: "control character"),
            Row(what: "unknown dtype", bytes: one(tensor(dtype: "F33")), code: DT, says: "does not define"),
            Row(what: "dtype not a string", bytes: one("\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}"), code: INV, says: "no \"dtype\""),
            Row(what: "no shape", bytes: one("\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}"), code: INV, says: "no \"shape\""),
            Row(what: "no data_offsets", bytes: one("\"a\":{\"dtype\":\"F32\",\"shape\":[2]}"), code: INV, says: "data_offsets"),
            Row(what: "tensor info not an object", bytes: one("\"a\":[1,2]"), code: INV, says: "not an object"),
            Row(what: "negative shape", bytes: one(tensor(shape: "[-2]")), code: INV, says: "shape[0]"),
            Row(what: "fractional shape", bytes: one(tensor(shape: "[2.0]")), code: INV, says: "shape[0]"),
            Row(what: "shape entry past int64", bytes: one(tensor(shape: "[9223372036854775808]")), code: INV, says: "shape[0]"),
            Row(what: "shape whose count overflows", bytes: one(tensor(shape: "[4294967296,4294967296]")), code: INV, says: "overflows"),
            Row(what: "shape whose byte size overflows", bytes: one(tensor(shape: "[4611686018427387904]")), code: INV, says: "overflows"),
            Row(what: "33 dimensions", bytes: one(tensor(shape: "[" + Array(repeating: "1", count: 33).joined(separator: ",") + "]", offsets: "[0,4]"), data: 4),
                code: INV, says: "dimensions"),
            Row(what: "F4 with an odd count", bytes: one(tensor(dtype: "F4", shape: "[3]", offsets: "[0,1]"), data: 1), code: INV, says: "whole number"),
            Row(what: "data_offsets reversed", bytes: one(tensor(offsets: "[8,0]")), code: INV, says: "begin <= end"),
            Row(what: "data_offsets negative", bytes: one(tensor(offsets: "[-8,0]")), code: INV, says: "begin <= end"),
            Row(what: "data_offsets of one entry", bytes: one(tensor(offsets: "[8]")), code: INV, says: "two int64"),
            Row(what: "data_offsets of three entries", bytes: one(tensor(offsets: "[0,8,8]")), code: INV, says: "two int64"),
            Row(what: "data_offsets past int64", bytes: one(tensor(offsets: "[0,18446744073709551616]")), code: INV, says: "two int64"),
            Row(what: "data_offsets not matching the shape", bytes: one(tensor(offsets: "[0,4]")), code: INV, says: "needs 8"),
            Row(what: "data_offsets past the file", bytes: one(tensor(offsets: "[4,12]")), code: INV, says: "past the end of the data"),
            Row(what: "data_offsets near int64 max", bytes: one(tensor(offsets: "[9223372036854775799,9223372036854775807]")), code: INV,
                says: "past the end of the data"),
            Row(what: "overlapping tensors", bytes: one(tensor(name: "a", offsets: "[0,8]") + "," + tensor(name: "b", offsets: "[4,12]"), data: 12),
                code: INV, says: "overlaps"),
            Row(what: "one tensor inside another", bytes: one(tensor(name: "a", shape: "[4]", offsets: "[0,16]") + "," + tensor(name: "b", offsets: "[4,12]"), data: 16),
                code: INV, says: "overlaps"),
            Row(what: "metadata value not a string", bytes: one("\"__metadata__\":{\"n_head\":4}," + tensor()), code: INV, says: "not a string"),
            Row(what: "metadata not an object", bytes: one("\"__metadata__\":\"x\"," + tensor()), code: INV, says: "not an object"),
            Row(what: "deeply nested JSON", bytes: STWriter.file("{\"a\":" + String(repeating: "[", count: 50_000)), code: INV, says: "nesting deeper"),
            Row(what: "a 1000-digit number", bytes: one(tensor(shape: "[" + String(repeating: "9", count: 1000) + "]")), code: INV, says: "longer than"),
            Row(what: "a string longer than 1 MiB", bytes: one(tensor(name: String(repeating: "x", count: (1 << 20) + 10))), code: INV, says: "longer than"),
        ]
        r.append(Row(what: "trailing spaces are fine (control row)", bytes: one(tensor() + "  "), code: .init(rawValue: 0), says: ""))
        return r
    }()

    @Test(arguments: rows) func hostileFile(_ row: Row) throws {
        do {
            let f = try parseST(row.bytes)
            #expect(row.code.rawValue == 0, "parsed, but \(row.code) was expected")
            #expect(!f.entries.isEmpty)
        } catch let error as NodeWriteError {
            #expect(error.code == row.code, "\(error.message)")
            #expect(error.message.contains(row.says), "\(error.message)")
        }
    }

    /// Random byte flips of valid files: never a crash, and whatever parses keeps every
    /// tensor inside the data section, without overlap, with bytes = shape × item size.
    @Test func randomByteFlips() throws {
        var generator = SystemRandomNumberGenerator()
        var seed = UInt64.random(in: 0 ... .max, using: &generator)
        let first = seed
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 17 }
        var w = STWriter()
        w.metadata = ["n_head": "2"]
        w.add("h.0.attn.c_proj.weight", [4, 4]); w.add("h.0.mlp.c_proj.weight", [6, 4], dtype: "F16")
        w.add("h.1.attn.c_proj.weight", [4, 4], dtype: "BF16"); w.add("h.1.mlp.c_proj.weight", [6, 4])
        w.add("wte.weight", [5, 4]); w.add("ln_f.weight", [4], dtype: "F64")
        let tl = try Data(contentsOf: URL(fileURLWithPath: Self.checkpoints + "/sae_mlp/sae_weights.safetensors"))
        let sources = [w.bytes(), Array(tl.prefix(400))]
        var parsed = 0, models = 0
        for i in 0..<6000 {
            var b = sources[i % sources.count]
            for _ in 0..<(1 + Int(next() % 4)) {
                let at = Int(next() % UInt64(b.count))
                switch next() % 4 {
                case 0: b[at] ^= UInt8(1 << (next() % 8))
                case 1: b[at] = UInt8(truncatingIfNeeded: next())
                case 2: b[at] = Array("{}[],:\"0123456789-e.".utf8)[Int(next() % 20)]
                default: b.removeSubrange(at..<min(b.count, at + Int(next() % 8)))
                }
                if b.isEmpty { break }
            }
            guard let f = try? parseST(b) else { continue }
            parsed += 1
            var spans: [(Int, Int)] = []
            for e in f.entries {
                #expect(e.begin >= f.dataStart && e.begin <= e.end && e.end <= b.count, "seed \(first)")
                let bits = SafetensorsFile.dtypeBits[e.dtypeName]!
                #expect((e.end - e.begin) * 8 == e.count * bits, "seed \(first)")
                if e.end > e.begin { spans.append((e.begin, e.end)) }
                if e.dtype != nil, e.shape.count <= 3 { _ = try? f.view(e) }
            }
            spans.sort { $0 < $1 }
            for (a, c) in zip(spans, spans.dropFirst()) { #expect(a.1 <= c.0, "overlap, seed \(first)") }
            if (try? Model.load(f, configDirectory: nil)) != nil { models += 1 }
        }
        #expect(parsed > 0)
        print("byte flips: \(parsed) of 6000 parsed, \(models) loaded as models (seed \(first))")
    }

    // MARK: models from the producers' files

    static let expected = try! SafetensorsFile(path: checkpoints + "/expected.safetensors")

    /// Every element of `actual` equals the expected float32 tensor, bit for bit.
    static func same(_ actual: TensorView?, _ name: String) {
        guard let actual else { Issue.record("\(name): weight not set"); return }
        guard let e = expected[name], let want = try? expected.view(e, shape: e.shape.count <= 3 ? nil : nil) else {
            Issue.record("expected tensor \(name) missing"); return
        }
        #expect(actual.shapeArray == want.shapeArray, "\(name)")
        guard actual.shapeArray == want.shapeArray else { return }
        var mismatches = 0, n = 0
        let s = actual.shape
        for i in 0..<s[0] { for j in 0..<s[1] { for k in 0..<s[2] {
            let a = actual.value(at: actual.offset(i, j, k)), b = want.value(at: want.offset(i, j, k))
            if a.bitPattern != b.bitPattern { mismatches += 1 }
            n += 1
        } } }
        #expect(mismatches == 0, "\(name): \(mismatches) of \(n) elements differ")
    }

    static func checkModel(_ model: Model, _ fixture: String, dtype: DType) {
        #expect(model.dims == (try! ModelDims(nLayers: 2, dModel: 32, nHeads: 4, dHead: 8, dFF: 64)))
        for layer in 0..<2 {
            same(model.weight(.attnToResidual, layer: layer)?.view, "\(fixture).attn.\(layer)")
            same(model.weight(.mlpToResidual, layer: layer)?.view, "\(fixture).mlp.\(layer)")
        }
        same(model.weight(.unembedding, layer: Model.noLayer)?.view, "\(fixture).unembedding")
        same(model.weight(.layerNormGainFinal, layer: Model.noLayer)?.view, "\(fixture).ln_final")
        // Borrowed in place: the views keep the file's dtype (a copy would be float32).
        #expect(model.weight(.attnToResidual, layer: 0)?.view.dtype == dtype)
        if fixture.hasPrefix("gpt2") {  // the tied embedding, viewed transposed by strides
            #expect(model.weight(.unembedding, layer: Model.noLayer)?.view.strides[0] == 1)
        }
    }

    @Test(arguments: [("gpt2", DType.float32), ("gpt2_f16", .float16), ("tl", .float32)])
    func producerCheckpoint(_ fixture: String, _ dtype: DType) throws {
        let model = try Model.load(safetensorsAt: "\(Self.checkpoints)/\(fixture)/model.safetensors")
        Self.checkModel(model, fixture, dtype: dtype)
    }

    @Test func saeLensAutoencoders() throws {
        let model = try Model.load(safetensorsAt: "\(Self.checkpoints)/tl/model.safetensors")
        try model.loadAutoencoder(saeLensAt: "\(Self.checkpoints)/sae_resid", nodeType: .autoencoderLatent, layer: 1)
        try model.loadAutoencoder(saeLensAt: "\(Self.checkpoints)/sae_mlp/sae_weights.safetensors",
                                  nodeType: .mlpAutoencoderLatent, layer: 0)
        let resid = try #require(model.autoencoder(.autoencoderLatent, layer: 1))
        let mlp = try #require(model.autoencoder(.mlpAutoencoderLatent, layer: 0))
        #expect(resid.input == .residual && mlp.input == .mlpPostAct)
        Self.same(resid.decoder.view, "sae_resid.decoder")
        Self.same(mlp.decoder.view, "sae_mlp.decoder")
        func status(_ body: () throws -> Void) -> NodeWriteError? {
            do { try body(); return nil } catch { return error as? NodeWriteError }
        }
        let wrongLayer = status { try model.loadAutoencoder(saeLensAt: "\(Self.checkpoints)/sae_resid", nodeType: .autoencoderLatent, layer: 0) }
        #expect(wrongLayer?.code == .invalidArgument && wrongLayer?.message.contains("not layer = 0") == true)
        let notLatent = status { try model.loadAutoencoder(saeLensAt: "\(Self.checkpoints)/sae_resid", nodeType: .mlpNeuron, layer: 1) }
        #expect(notLatent?.code == .invalidArgument)
        let noDir = status { try model.loadAutoencoder(saeLensAt: "\(Self.checkpoints)/nothing", nodeType: .autoencoderLatent, layer: 1) }
        #expect(noDir?.code == .invalidArgument)
    }

    @Test func saeLensHooks() throws {
        let ok: [(String, Int, AutoencoderInput)] = [
            ("blocks.3.hook_resid_pre", 3, .residual), ("blocks.0.hook_resid_mid", 0, .residual),
            ("blocks.11.hook_resid_post", 11, .residual), ("blocks.2.hook_mlp_out", 2, .residual),
            ("blocks.2.hook_attn_out", 2, .residual), ("blocks.5.mlp.hook_post", 5, .mlpPostAct),
            ("blocks.1.attn.hook_z", 1, .attnZ)]
        for (hook, layer, input) in ok {
            let r = try Model.autoencoderInput(hookName: hook, "cfg")
            #expect(r.layer == layer && r.input == input, "\(hook)")
        }
        for hook in ["blocks.1.attn.hook_q", "blocks.1.hook_resid", "blocks.01.hook_resid_post", "blocks.x.hook_mlp_out",
                     "hook_embed", "blocks.1.mlp.hook_pre", "", "blocks..hook_mlp_out"] {
            #expect(throws: NodeWriteError.self, "\(hook)") { try Model.autoencoderInput(hookName: hook, "cfg") }
            do { _ = try Model.autoencoderInput(hookName: hook, "cfg") } catch { #expect(error.code == .unsupported) }
        }
    }

    /// An SAELens directory with a given cfg.json (and the resid SAE's weights).
    static func saeDirectory(cfg: String) throws -> String {
        let dir = tempDirectory()
        try cfg.write(to: dir.appendingPathComponent("cfg.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: checkpoints + "/sae_resid/sae_weights.safetensors",
                                         toPath: dir.appendingPathComponent("sae_weights.safetensors").path)
        return dir.path
    }

    @Test func saeLensConfigs() throws {
        let model = try Model.load(safetensorsAt: "\(Self.checkpoints)/tl/model.safetensors")
        let rows: [(String, NodeWriteError.Code?)] = [
            (#"{"hook_name": "blocks.1.hook_resid_post"}"#, nil),
            (#"{"hook_name": "blocks.1.attn.hook_z"}"#, nil),  // d_in 32 = n_heads · d_head here
            (#"{"metadata": {"hook_name": "blocks.1.hook_mlp_out"}, "d_in": 32, "d_sae": 48}"#, nil),
            (#"{"hook_name": "blocks.1.hook_resid_post", "d_in": 31}"#, .shapeMismatch),
            (#"{"hook_name": "blocks.1.hook_resid_post", "d_sae": 47}"#, .shapeMismatch),
            (#"{"hook_name": "blocks.1.mlp.hook_post"}"#, .shapeMismatch),  // d_in 32 is not d_ff
            (#"{"hook_name": 1}"#, .invalidArgument),
            (#"{}"#, .invalidArgument),
            (#"[1]"#, .invalidArgument),
            (#"{"hook_name": "blocks.1.hook_resid_post""#, .invalidArgument),
        ]
        for (cfg, code) in rows {
            let dir = try Self.saeDirectory(cfg: cfg)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            do {
                // one autoencoder per slot: empty it before each load (the first load fills it)
                try model.removeAutoencoder(.attentionAutoencoderLatent, layer: 1)
                try model.loadAutoencoder(saeLensAt: dir, nodeType: .attentionAutoencoderLatent, layer: 1)
                #expect(code == nil, "\(cfg)")
            } catch {
                #expect(error.code == code, "\(cfg): \(error.message)")
            }
        }
    }

    // MARK: dimension checks on files the test writes

    /// A TransformerLens-style file; `edit` changes it.
    static func tl(_ edit: (inout STWriter) -> Void = { _ in }) -> STWriter {
        var w = STWriter()
        for l in 0..<2 {
            w.add("blocks.\(l).attn.W_O", [2, 3, 4])
            w.add("blocks.\(l).mlp.W_out", [5, 4])
        }
        w.add("unembed.W_U", [4, 7]); w.add("ln_final.w", [4])
        edit(&w)
        return w
    }

    static func gpt2(_ nHead: String?, _ edit: (inout STWriter) -> Void = { _ in }) -> STWriter {
        var w = STWriter()
        if let nHead { w.metadata = ["format": "pt", "n_head": nHead] }
        for l in 0..<2 {
            w.add("h.\(l).attn.c_proj.weight", [6, 4])
            w.add("h.\(l).mlp.c_proj.weight", [5, 4])
        }
        w.add("wte.weight", [7, 4]); w.add("ln_f.weight", [4])
        edit(&w)
        return w
    }

    static func drop(_ name: String) -> (inout STWriter) -> Void { { $0.tensors.removeAll { $0.name == name } } }
    static func replace(_ name: String, _ shape: [Int], dtype: String = "F32") -> (inout STWriter) -> Void {
        { w in
            w.tensors.removeAll { $0.name == name }
            w.add(name, shape, dtype: dtype)
        }
    }

    struct ModelRow: CustomTestStringConvertible, Sendable {
        let what: String
        let file: [UInt8]
        let code: NodeWriteError.Code?
        let says: String
        var testDescription: String { what }
    }

    static let modelRows: [ModelRow] = {
        let SHAPE = NodeWriteError.Code.shapeMismatch, INV = NodeWriteError.Code.invalidArgument
        return [
            ModelRow(what: "TL: valid", file: tl().bytes(), code: nil, says: ""),
            ModelRow(what: "TL: no unembedding nor gain", file: tl { drop("unembed.W_U")(&$0); drop("ln_final.w")(&$0) }.bytes(), code: nil, says: ""),
            ModelRow(what: "TL: gap in layers", file: tl { $0.add("blocks.3.attn.W_O", [2, 3, 4]) }.bytes(), code: SHAPE, says: "layer 2 is missing"),
            ModelRow(what: "TL: layer 10^15", file: tl { $0.add("blocks.999999999999999.attn.W_O", [2, 3, 4]) }.bytes(), code: SHAPE, says: "without gaps"),
            ModelRow(what: "TL: layer past Int", file: tl { $0.add("blocks.99999999999999999999.attn.W_O", [2, 3, 4]) }.bytes(), code: INV, says: "no layer number"),
            ModelRow(what: "TL: layer 01", file: tl { $0.add("blocks.01.attn.W_O", [2, 3, 4]) }.bytes(), code: INV, says: "no layer number"),
            ModelRow(what: "TL: layer 1 W_O of another shape", file: tl(replace("blocks.1.attn.W_O", [2, 2, 4])).bytes(), code: SHAPE, says: "blocks.1.attn.W_O"),
            ModelRow(what: "TL: layer 1 W_out of another d_model", file: tl(replace("blocks.1.mlp.W_out", [5, 3])).bytes(), code: SHAPE, says: "blocks.1.mlp.W_out"),
            ModelRow(what: "TL: W_O of 2 dimensions", file: tl(replace("blocks.0.attn.W_O", [6, 4])).bytes(), code: SHAPE, says: "blocks.0.attn.W_O"),
            ModelRow(what: "TL: W_O of 4 dimensions", file: tl(replace("blocks.1.attn.W_O", [1, 2, 3, 4])).bytes(), code: SHAPE, says: "blocks.1.attn.W_O"),
            ModelRow(what: "TL: no W_out at layer 1", file: tl(drop("blocks.1.mlp.W_out")).bytes(), code: .missingInput, says: "blocks.1.mlp.W_out"),
            ModelRow(what: "TL: W_O as I64", file: tl(replace("blocks.1.attn.W_O", [2, 3, 4], dtype: "I64")).bytes(), code: .unsupportedDType, says: "I64"),
            ModelRow(what: "TL: W_O as BF16", file: tl(replace("blocks.1.attn.W_O", [2, 3, 4], dtype: "BF16")).bytes(), code: nil, says: ""),
            ModelRow(what: "TL: W_U of another d_model", file: tl(replace("unembed.W_U", [5, 7])).bytes(), code: SHAPE, says: "unembed.W_U"),
            ModelRow(what: "TL: W_U with 0 vocabulary", file: tl(replace("unembed.W_U", [4, 0])).bytes(), code: SHAPE, says: "unembed.W_U"),
            ModelRow(what: "TL: ln_final.w of another size", file: tl(replace("ln_final.w", [5])).bytes(), code: SHAPE, says: "ln_final.w"),
            ModelRow(what: "TL: zero heads", file: tl { replace("blocks.0.attn.W_O", [0, 3, 4])(&$0); replace("blocks.1.attn.W_O", [0, 3, 4])(&$0) }.bytes(),
                     code: INV, says: "n_heads"),
            ModelRow(what: "GPT-2: valid (n_head in metadata)", file: gpt2("2").bytes(), code: nil, says: ""),
            ModelRow(what: "GPT-2: n_head in neither metadata nor config.json", file: gpt2(nil).bytes(), code: INV, says: "n_head is not in the weights"),
            ModelRow(what: "GPT-2: n_head not a divisor", file: gpt2("4").bytes(), code: SHAPE, says: "not a multiple"),
            ModelRow(what: "GPT-2: n_head 0", file: gpt2("0").bytes(), code: INV, says: "n_head"),
            ModelRow(what: "GPT-2: n_head text", file: gpt2("two").bytes(), code: INV, says: "n_head"),
            ModelRow(what: "GPT-2: layer 1 c_proj of another shape", file: gpt2("2", replace("h.1.attn.c_proj.weight", [4, 4])).bytes(), code: SHAPE,
                     says: "h.1.attn.c_proj.weight"),
            ModelRow(what: "GPT-2: wte of another d_model", file: gpt2("2", replace("wte.weight", [7, 5])).bytes(), code: SHAPE, says: "wte.weight"),
            ModelRow(what: "GPT-2: c_proj of 3 dimensions", file: gpt2("2", replace("h.0.attn.c_proj.weight", [2, 3, 4])).bytes(), code: SHAPE,
                     says: "h.0.attn.c_proj.weight"),
            ModelRow(what: "GPT-2: no mlp c_proj at layer 1", file: gpt2("2", drop("h.1.mlp.c_proj.weight")).bytes(), code: .missingInput,
                     says: "h.1.mlp.c_proj.weight"),
            ModelRow(what: "neither layout", file: { var w = STWriter(); w.add("x", [1]); return w }().bytes(), code: INV, says: "not a checkpoint"),
        ]
    }()

    @Test(arguments: modelRows) func modelFromFile(_ row: ModelRow) throws {
        do {
            let model = try Model.load(parseST(row.file), configDirectory: nil)
            #expect(row.code == nil, "loaded, but \(String(describing: row.code)) was expected")
            #expect(model.weight(.attnToResidual, layer: 1)?.view.shapeArray == [2, 3, 4])
        } catch let error as NodeWriteError {
            #expect(error.code == row.code, "\(error.message)")
            #expect(error.message.contains(row.says), "\(error.message)")
        }
    }

    @Test func gpt2ConfigNextToTheFile() throws {
        let dir = tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        try Data(Self.gpt2(nil).bytes()).write(to: URL(fileURLWithPath: path))
        let configs: [(String, NodeWriteError.Code?)] = [
            (#"{"n_head": 2, "n_layer": 2, "n_embd": 4, "n_inner": null}"#, nil),
            (#"{"n_head": 4}"#, .shapeMismatch),
            (#"{"n_head": 2, "n_layer": 3}"#, .shapeMismatch),
            (#"{"n_head": 2, "n_embd": 8}"#, .shapeMismatch),
            (#"{"n_head": 2, "n_inner": 6}"#, .shapeMismatch),
            (#"{"n_head": "2"}"#, .invalidArgument),
            (#"{"n_layer": 2}"#, .invalidArgument),
            ("{\"n_head\": 2", .invalidArgument),
        ]
        for (config, code) in configs {
            try config.write(toFile: dir.appendingPathComponent("config.json").path, atomically: true, encoding: .utf8)
            let result = Result { () throws(NodeWriteError) -> Model in try Model.load(safetensorsAt: path) }
            switch result {
            case .success(let m):
                #expect(code == nil, "\(config)")
                #expect(m.dims.nHeads == 2 && m.dims.dHead == 3, "\(config)")
            case .failure(let error):
                #expect(error.code == code, "\(config): \(error.message)")
            }
        }
    }

    @Test func misalignedTensorsAreCopied() throws {
        // A 1-byte tensor first puts the F32 tensors after it at odd addresses.
        var w = Self.tl()
        w.tensors.insert(STWriter.Tensor(name: "pad", dtype: "U8", shape: [1], data: [7]), at: 0)
        let model = try Model.load(parseST(w.bytes()), configDirectory: nil)
        let v = try #require(model.weight(.attnToResidual, layer: 0)?.view)
        #expect(Int(bitPattern: v.base) % 4 == 0)
        #expect(v.value(at: 5) == Float(5 % 17) * 0.25 - 1)
    }

    // MARK: the C ABI

    @Test func cABI() throws {
        var model: OpaquePointer?
        let gpt2 = "\(Self.checkpoints)/gpt2/model.safetensors"
        #expect(nw_model_load_safetensors(gpt2, &model) == NW_OK.rawValue)
        var dims = nw_model_dims()
        #expect(nw_model_dims_get(model, &dims) == NW_OK.rawValue)
        #expect(dims.n_layers == 2 && dims.d_model == 32 && dims.n_heads == 4 && dims.d_head == 8 && dims.d_ff == 64)
        var vocab: Int64 = 0
        #expect(nw_model_vocab_size(model, &vocab) == NW_OK.rawValue && vocab == 50)
        #expect(nw_model_load_autoencoder_safetensors(model, "\(Self.checkpoints)/sae_mlp", Int32(NW_NODE_MLP_AUTOENCODER_LATENT.rawValue), 0)
                == NW_OK.rawValue)
        #expect(nw_model_load_autoencoder_safetensors(model, "\(Self.checkpoints)/sae_mlp", 1, 0) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_load_autoencoder_safetensors(model, "\(Self.checkpoints)/sae_mlp", 99, 0) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_load_autoencoder_safetensors(model, "\(Self.checkpoints)/sae_mlp",
                                                      Int32(NW_NODE_MLP_AUTOENCODER_LATENT.rawValue), 2) == NW_ERR_INDEX_OUT_OF_RANGE.rawValue)
        #expect(nw_model_load_autoencoder_safetensors(nil, "x", 2, 0) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_load_autoencoder_safetensors(model, nil, 2, 0) == NW_ERR_INVALID_ARGUMENT.rawValue)
        nw_model_destroy(model)

        var untouched = OpaquePointer(bitPattern: 0x1234)
        #expect(nw_model_load_safetensors(nil, &untouched) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_load_safetensors(gpt2, nil) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_load_safetensors("", &untouched) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_load_safetensors("/nonexistent/model.safetensors", &untouched) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(String(cString: nw_last_error_message()).contains("No such file"))
        #expect(nw_model_load_safetensors(Self.checkpoints, &untouched) == NW_ERR_INVALID_ARGUMENT.rawValue)  // a directory
        let notUTF8: [CChar] = [0x2f, -1, -2, 0]
        #expect(nw_model_load_safetensors(notUTF8, &untouched) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(untouched == OpaquePointer(bitPattern: 0x1234))
    }

    /// The mapping outlives the caller's model handle and the file's name: a deriver keeps
    /// the weights it borrows alive.
    @Test func mappingLifetime() throws {
        let dir = tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.safetensors").path
        try FileManager.default.copyItem(atPath: "\(Self.checkpoints)/tl/model.safetensors", toPath: path)
        var model: OpaquePointer?
        #expect(nw_model_load_safetensors(path, &model) == NW_OK.rawValue)
        var node = nw_node_index()
        (node.node_type, node.layer, node.n_indices, node.indices) = (Int32(NW_NODE_MLP_NEURON.rawValue), 1, 2, (0, 3, 0, 0))
        var deriver: OpaquePointer?
        #expect(nw_node_write_deriver_create(model, &node, &deriver) == NW_OK.rawValue)
        nw_model_destroy(model)
        try FileManager.default.removeItem(atPath: path)
        var store: OpaquePointer?
        #expect(nw_store_create(&store) == NW_OK.rawValue)
        var post = [Float](repeating: 0, count: 64)
        post[3] = 2
        var shape: [Int64] = [1, 64]
        var out = [Float](repeating: .nan, count: 32)
        post.withUnsafeBufferPointer { p in
            shape.withUnsafeMutableBufferPointer { s in
                var view = nw_tensor_view(data: p.baseAddress, dtype: Int32(NW_DTYPE_F32.rawValue), ndim: 2, shape: s.baseAddress, strides: nil)
                #expect(nw_store_put(store, Int32(NW_ACT_MLP_POST_ACT.rawValue), 1, &view) == NW_OK.rawValue)
                #expect(nw_deriver_derive(deriver, store, &out, 32) == NW_OK.rawValue)
            }
        }
        let e = try #require(Self.expected["tl.mlp.1"])
        let w = try Self.expected.view(e)
        #expect((0..<32).allSatisfy { out[$0] == 2 * w.value(at: 3 * 32 + $0) })
        nw_deriver_destroy(deriver)
        nw_store_destroy(store)
    }
}

import CNodeWrite
import Foundation
import Testing

/// The parity fixtures: the original's inputs and outputs (tdb_tiny.safetensors) and
/// its cases (tdb_tiny.json).
final class Fixture: @unchecked Sendable {
    struct Case: Decodable, CustomTestStringConvertible {
        let id: String
        let node_type: String
        let layer: Int32
        let tensor_indices: [Int64]
        let autoencoders: String
        let expected: String?
        let error: String?
        var testDescription: String { "\(id) \(node_type) L\(layer) \(tensor_indices) [\(autoencoders)]" }
    }

    struct Tensor {
        let shape: [Int64]
        let values: [Float]
    }

    static let shared = Fixture()
    static let (nLayers, dModel, nHeads, dHead, dFF, nTokens) = (3, 48, 3, 16, 192, 7)

    let cases: [Case]
    private let tensors: [String: Tensor]

    /// The write-family fixtures (tdb_family.*): tensors only; the manifest is read by FamilyTests.
    static let family = Fixture(name: "tdb_family")

    /// The edge-attribution fixtures (tdb_edges.*): tensors only; EdgeTests reads the manifest.
    static let edges = Fixture(name: "tdb_edges")

    private init(name: String = "tdb_tiny") {
        let dir = Fixture.directory
        struct File: Decodable { let cases: [Case]? }
        cases = (try? JSONDecoder().decode(File.self, from: Data(contentsOf: dir.appendingPathComponent("\(name).json"))).cases ?? []) ?? []
        tensors = Fixture.readSafetensors(try! Data(contentsOf: dir.appendingPathComponent("\(name).safetensors")))
    }

    static var directory: URL { Bundle.module.url(forResource: "Fixtures", withExtension: nil)! }

    func has(_ name: String) -> Bool { tensors[name] != nil }

    subscript(name: String) -> Tensor {
        guard let t = tensors[name] else { fatalError("fixture tensor \(name) missing") }
        return t
    }

    private static func readSafetensors(_ data: Data) -> [String: Tensor] {
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try! JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        var out: [String: Tensor] = [:]
        for (name, info) in header where name != "__metadata__" {
            let info = info as! [String: Any]
            precondition(info["dtype"] as! String == "F32")
            let offsets = info["data_offsets"] as! [Int]
            let bytes = data.subdata(in: (8 + n + offsets[0])..<(8 + n + offsets[1]))
            let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            out[name] = Tensor(shape: (info["shape"] as! [Int]).map(Int64.init), values: values)
        }
        return out
    }
}

/// Owned memory behind a view, kept alive for as long as the model or store borrows it.
final class Buffer: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    let shape: [Int64]
    let strides: [Int64]?
    let dtype: Int32

    init<T>(_ values: [T], shape: [Int64], strides: [Int64]? = nil, dtype: Int32) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, values.count * MemoryLayout<T>.stride), alignment: 16)
        values.withUnsafeBytes { if let b = $0.baseAddress { raw.copyMemory(from: b, byteCount: $0.count) } }
        self.raw = raw
        self.shape = shape
        self.strides = strides
        self.dtype = dtype
    }

    convenience init(_ t: Fixture.Tensor) { self.init(t.values, shape: t.shape, dtype: Int32(NW_DTYPE_F32.rawValue)) }

    deinit { raw.deallocate() }

    /// Calls body with a view of this buffer.
    func withView<R>(_ body: (UnsafePointer<nw_tensor_view>) -> R) -> R {
        shape.withUnsafeBufferPointer { shape in
            func call(_ strides: UnsafePointer<Int64>?) -> R {
                var v = nw_tensor_view(data: raw, dtype: dtype, ndim: Int32(shape.count), shape: shape.baseAddress, strides: strides)
                return body(&v)
            }
            guard let strides else { return call(nil) }
            return strides.withUnsafeBufferPointer { call($0.baseAddress) }
        }
    }
}

/// A model and store over the fixture tensors, through the C ABI.
final class Setup: @unchecked Sendable {
    let model: OpaquePointer
    let store: OpaquePointer
    private var buffers: [Buffer] = []

    enum WeightForm { case canonical, checkpoint, float16, bfloat16, float64, float16AsFloat32, bfloat16AsFloat32 }

    /// autoencoders: "none", "single" (MLP autoencoder as autoencoder_latent) or "multi".
    init(autoencoders: String, weights: WeightForm = .canonical) {
        var dims = nw_model_dims(n_layers: 3, d_model: 48, n_heads: 3, d_head: 16, d_ff: 192)
        var m: OpaquePointer?, s: OpaquePointer?
        #expect(nw_model_create(&dims, &m) == 0)
        #expect(nw_store_create(&s) == 0)
        model = m!
        store = s!
        let f = Fixture.shared
        for l in 0..<3 {
            let mlp = weightBuffer(.mlpToResidual, layer: l, form: weights)
            let attn = weightBuffer(.attnToResidual, layer: l, form: weights)
            #expect(mlp.withView { nw_model_set_weight(model, Int32(NW_WEIGHT_MLP_TO_RESIDUAL.rawValue), Int32(l), $0, Int32(NW_BORROW.rawValue)) } == 0)
            #expect(attn.withView { nw_model_set_weight(model, Int32(NW_WEIGHT_ATTN_TO_RESIDUAL.rawValue), Int32(l), $0, Int32(NW_BORROW.rawValue)) } == 0)
            let mlpAE = keep(Buffer(f["autoencoders.mlp.\(l).decoder_weight"]))
            let attnAE = keep(Buffer(f["autoencoders.attention.\(l).decoder_weight"]))
            if autoencoders == "single" {
                #expect(mlpAE.withView { nw_model_set_autoencoder(model, 2, Int32(l), 0, $0, Int32(NW_BORROW.rawValue)) } == 0)
            } else if autoencoders == "multi" {
                #expect(mlpAE.withView { nw_model_set_autoencoder(model, 3, Int32(l), 0, $0, Int32(NW_BORROW.rawValue)) } == 0)
                #expect(attnAE.withView { nw_model_set_autoencoder(model, 4, Int32(l), 1, $0, Int32(NW_BORROW.rawValue)) } == 0)
            }
            for (act, name) in Setup.activations {
                #expect(keep(Buffer(f["activations.\(l).\(name)"])).withView { nw_store_put(store, act, Int32(l), $0) } == 0)
            }
        }
    }

    static let activations: [(Int32, String)] = [
        (0, "mlp.post_act"), (1, "attn.qk_probs"), (2, "attn.v"), (3, "online_autoencoder_latent"),
        (4, "online_mlp_autoencoder_latent"), (5, "online_attention_autoencoder_latent"),
    ]

    deinit {
        nw_model_destroy(model)
        nw_store_destroy(store)
    }

    @discardableResult func keep(_ b: Buffer) -> Buffer { buffers.append(b); return b }

    private enum Weight { case mlpToResidual, attnToResidual }

    /// The layer's weight in one of several memory forms holding the same values.
    private func weightBuffer(_ w: Weight, layer l: Int, form: WeightForm) -> Buffer {
        let f = Fixture.shared
        let canonical = f[w == .mlpToResidual ? "weights.\(l).mlp.to_residual" : "weights.\(l).attn.to_residual"]
        switch form {
        case .canonical:
            return keep(Buffer(canonical))
        case .checkpoint:
            // The checkpoint's (d_model, inputs) matrix, viewed in TDB's layout by strides alone.
            if w == .mlpToResidual {
                let t = f["checkpoint.xf_layers.\(l).mlp.out_layer.weight"]  // (d_model, d_ff)
                return keep(Buffer(t.values, shape: [192, 48], strides: [1, 192], dtype: 0))
            }
            let t = f["checkpoint.xf_layers.\(l).attn.out_proj.weight"]  // (d_model, heads*d_head)
            return keep(Buffer(t.values, shape: [3, 16, 48], strides: [16, 1, 48], dtype: 0))
        case .float16:
            return keep(Buffer(canonical.values.map { Float16($0) }, shape: canonical.shape, dtype: 1))
        case .bfloat16:
            return keep(Buffer(canonical.values.map { bfloat16Bits($0) }, shape: canonical.shape, dtype: 2))
        case .float64:
            return keep(Buffer(canonical.values.map { Double($0) }, shape: canonical.shape, dtype: 3))
        case .float16AsFloat32:
            return keep(Buffer(canonical.values.map { Float(Float16($0)) }, shape: canonical.shape, dtype: 0))
        case .bfloat16AsFloat32:
            return keep(Buffer(canonical.values.map { bfloat16Value(bfloat16Bits($0)) }, shape: canonical.shape, dtype: 0))
        }
    }
}

/// bfloat16 bits of x, rounded to nearest even (as torch does).
func bfloat16Bits(_ x: Float) -> UInt16 {
    let bits = x.bitPattern
    return UInt16((bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
}

/// The value a bfloat16 holds.
func bfloat16Value(_ b: UInt16) -> Float { Float(bitPattern: UInt32(b) << 16) }

/// A node index for the C ABI.
func nodeIndex(_ type: Int32, layer: Int32, _ indices: [Int64]) -> nw_node_index {
    var n = nw_node_index()
    n.node_type = type
    n.layer = layer
    n.n_indices = Int32(indices.count)
    withUnsafeMutableBytes(of: &n.indices) { raw in
        for (i, v) in indices.prefix(4).enumerated() { raw.storeBytes(of: v, toByteOffset: 8 * i, as: Int64.self) }
    }
    return n
}

func nodeType(_ name: String) -> Int32 {
    var t: Int32 = -1
    _ = nw_node_type_from_name(name, &t)
    return t
}

var lastError: String { String(cString: nw_last_error_message()) }

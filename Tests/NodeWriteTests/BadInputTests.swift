import CNodeWrite
import Testing

/// Bad input of every kind: the exact status, a message, and nothing written.
@Suite("Bad input")
struct BadInputTests {
    static let setup = Setup(autoencoders: "multi")
    static let (T, D) = (7, 48)
    static let OK = NW_OK.rawValue, INVALID = NW_ERR_INVALID_ARGUMENT.rawValue
    static let INDEX = NW_ERR_INDEX_OUT_OF_RANGE.rawValue, SHAPE = NW_ERR_SHAPE_MISMATCH.rawValue
    static let DTYPE = NW_ERR_UNSUPPORTED_DTYPE.rawValue, MISSING = NW_ERR_MISSING_INPUT.rawValue
    static let OOM = NW_ERR_OUT_OF_MEMORY.rawValue, SMALL = NW_ERR_BUFFER_TOO_SMALL.rawValue

    /// A row: what is wrong, the status it must give, and the call, which receives a
    /// sentinel-filled output buffer of T × d_model floats.
    struct Row: CustomTestStringConvertible, Sendable {
        let what: String
        let status: Int32
        let call: @Sendable (UnsafeMutablePointer<Float>) -> Int32
        var testDescription: String { what }
    }

    /// A deriver call on a node of the multi-autoencoder fixture model.
    static func derive(_ what: String, _ status: Int32, _ type: Int32, layer: Int32 = 1, _ indices: [Int64],
                       outLen: Int = T * D) -> Row {
        Row(what: what, status: status) { out in
            var node = nodeIndex(type, layer: layer, indices)
            return nw_node_write(setup.model, setup.store, &node, out, outLen)
        }
    }

    /// nw_model_create with one dimension changed.
    static func dims(_ what: String, _ status: Int32, _ change: @escaping @Sendable (inout nw_model_dims) -> Void) -> Row {
        Row(what: what, status: status) { _ in
            var d = nw_model_dims(n_layers: 3, d_model: 48, n_heads: 3, d_head: 16, d_ff: 192)
            change(&d)
            var m: OpaquePointer?
            let s = nw_model_create(&d, &m)
            nw_model_destroy(m)
            return s
        }
    }

    /// nw_model_set_weight (mlp.to_residual unless `weight` says otherwise) with a view.
    static func weight(_ what: String, _ status: Int32, weight: Int32 = 0, layer: Int32 = 0, dtype: Int32 = 0,
                       ndim: Int32 = 2, shape: [Int64] = [192, 48], strides: [Int64]? = nil, ownership: Int32 = 0,
                       data: Bool = true) -> Row {
        Row(what: what, status: status) { _ in
            var d = nw_model_dims(n_layers: 3, d_model: 48, n_heads: 3, d_head: 16, d_ff: 192)
            var m: OpaquePointer?
            _ = nw_model_create(&d, &m)
            defer { nw_model_destroy(m) }
            let memory = UnsafeMutablePointer<Double>.allocate(capacity: 192 * 48)
            memory.initialize(repeating: 0, count: 192 * 48)
            defer { memory.deallocate() }
            return shape.withUnsafeBufferPointer { sh in
                func call(_ st: UnsafePointer<Int64>?) -> Int32 {
                    var v = nw_tensor_view(data: data ? UnsafeRawPointer(memory) : nil, dtype: dtype, ndim: ndim,
                                           shape: sh.baseAddress, strides: st)
                    return nw_model_set_weight(m, weight, layer, &v, ownership)
                }
                guard let strides else { return call(nil) }
                return strides.withUnsafeBufferPointer { call($0.baseAddress) }
            }
        }
    }

    /// nw_store_put of the fixture's (7, 192) mlp.post_act into a new store.
    static func put(_ what: String, _ status: Int32, activation: Int32 = 0, layer: Int32 = 0) -> Row {
        Row(what: what, status: status) { _ in
            var s: OpaquePointer?
            _ = nw_store_create(&s)
            defer { nw_store_destroy(s) }
            return Buffer(Fixture.shared["activations.0.mlp.post_act"]).withView { nw_store_put(s, activation, layer, $0) }
        }
    }

    static let rows: [Row] = [
        // Model dimensions.
        dims("dims.d_model = 0", INVALID) { $0.d_model = 0 },
        dims("dims.n_heads = -1", INVALID) { $0.n_heads = -1 },
        dims("dims.d_ff = INT64_MIN", INVALID) { $0.d_ff = .min },
        dims("dims.n_layers = INT32_MAX + 1", INVALID) { $0.n_layers = Int64(Int32.max) + 1 },
        dims("d_ff × d_model overflows", INVALID) { $0.d_ff = .max; $0.d_model = 2 },
        dims("n_heads × d_head × d_model overflows", INVALID) { $0.n_heads = 1 << 32; $0.d_head = 1 << 31; $0.d_model = 2 },
        dims("dims of 1 are fine", OK) { $0 = nw_model_dims(n_layers: 1, d_model: 1, n_heads: 1, d_head: 1, d_ff: 1) },
        Row(what: "nw_model_create(NULL dims)", status: INVALID) { _ in
            var m: OpaquePointer?
            return nw_model_create(nil, &m)
        },
        Row(what: "nw_model_create(NULL out)", status: INVALID) { _ in
            var d = nw_model_dims(n_layers: 1, d_model: 1, n_heads: 1, d_head: 1, d_ff: 1)
            return nw_model_create(&d, nil)
        },
        // Weights.
        weight("weight view as expected", OK),
        weight("weight = -1", INVALID, weight: -1),
        weight("weight = 18 (one past)", INVALID, weight: 18),
        weight("layer = -1", INDEX, layer: -1),
        weight("layer = n_layers", INDEX, layer: 3),
        weight("layer = INT32_MIN", INDEX, layer: .min),
        weight("dtype = 4", DTYPE, dtype: 4),
        weight("dtype = -1", DTYPE, dtype: -1),
        weight("dtype float64 is fine", OK, dtype: 3),
        weight("ndim = 3 for mlp.to_residual", SHAPE, ndim: 3, shape: [192, 48, 1]),
        weight("ndim = 2 for attn.to_residual", SHAPE, weight: 1),
        weight("ndim = -1", SHAPE, ndim: -1),
        weight("shape (192, 47)", SHAPE, shape: [192, 47]),
        weight("shape (193, 48)", SHAPE, shape: [193, 48]),
        weight("shape (-192, 48)", INVALID, shape: [-192, 48]),
        weight("transposed strides are fine", OK, strides: [1, 192]),
        weight("zero strides are fine", OK, strides: [0, 0], ownership: 1),
        weight("stride × shape overflows", INVALID, strides: [Int64.max / 100, 1]),
        weight("element span overflows", INVALID, strides: [Int64.max / 192, Int64.max / 48]),
        weight("byte span overflows", INVALID, strides: [Int64.max / 192 / 2, 1]),
        weight("NULL data with elements", INVALID, data: false),
        weight("ownership = 2", INVALID, ownership: 2),
        weight("ownership = -1", INVALID, ownership: -1),
        Row(what: "NW_COPY of a weight larger than memory", status: OOM) { _ in
            // A truthful view of one float, broadcast by zero strides to 2^31 × 2^31 elements.
            var d = nw_model_dims(n_layers: 1, d_model: 1 << 31, n_heads: 1, d_head: 1, d_ff: 1 << 31)
            var m: OpaquePointer?
            _ = nw_model_create(&d, &m)
            defer { nw_model_destroy(m) }
            var one: Float = 1
            let shape: [Int64] = [1 << 31, 1 << 31], strides: [Int64] = [0, 0]
            return withUnsafePointer(to: &one) { data in
                shape.withUnsafeBufferPointer { sh in
                    strides.withUnsafeBufferPointer { st in
                        var v = nw_tensor_view(data: data, dtype: 0, ndim: 2, shape: sh.baseAddress, strides: st.baseAddress)
                        return nw_model_set_weight(m, 0, 0, &v, 0)
                    }
                }
            }
        },
        Row(what: "autoencoder for mlp_neuron", status: INVALID) { _ in
            var v = nw_tensor_view()
            return nw_model_set_autoencoder(setup.model, 0, 0, 0, &v, 0)
        },
        Row(what: "autoencoder input = 3", status: INVALID) { _ in
            var v = nw_tensor_view()
            return nw_model_set_autoencoder(setup.model, 3, 0, 3, &v, 0)
        },
        Row(what: "decoder n_inputs ≠ d_ff for an MLP autoencoder", status: SHAPE) { _ in
            let b = Buffer([Float](repeating: 0, count: 80 * 48), shape: [80, 48], dtype: 0)
            // autoencoder_latent's slot at layer 0 is empty in this setup (one autoencoder per slot)
            return b.withView { nw_model_set_autoencoder(setup.model, 2, 0, 0, $0, 0) }
        },
        // Store.
        put("store_put activation = 8", INVALID, activation: 8),
        put("store_put layer = -1", INVALID, layer: -1),
        put("store_put attn.v with 2 dimensions", SHAPE, activation: 2),
        put("store_put mlp.post_act at layer INT32_MAX", OK, layer: .max),
        Row(what: "store_put NULL store", status: INVALID) { _ in
            Buffer(Fixture.shared["activations.0.mlp.post_act"]).withView { nw_store_put(nil, 0, 0, $0) }
        },
        // Node indices (layer 1; T = 7, d_ff = 192, heads = 3, latents 80 / 56).
        derive("token 0, neuron 0", OK, 0, [0, 0]),
        derive("token -7 (first), neuron -192 (first)", OK, 0, [-7, -192]),
        derive("token 6, neuron 191 (last)", OK, 0, [6, 191]),
        derive("token 7 = T", INDEX, 0, [7, 0]),
        derive("token -8 = -T-1", INDEX, 0, [-8, 0]),
        derive("token INT64_MAX", INDEX, 0, [.max, 0]),
        derive("token INT64_MIN", INDEX, 0, [.min, 0]),
        derive("neuron 192 = d_ff", INDEX, 0, [0, 192]),
        derive("neuron -193", INDEX, 0, [0, -193]),
        derive("neuron INT64_MIN", INDEX, 0, [0, .min]),
        derive("query 7", INDEX, 1, [7, 0, 0]),
        derive("key 7", INDEX, 1, [0, 7, 0]),
        derive("key -8", INDEX, 1, [0, -8, 0]),
        derive("head 3 = n_heads", INDEX, 1, [0, 0, 3]),
        derive("head -4", INDEX, 1, [0, 0, -4]),
        derive("head -3 (first)", OK, 1, [0, 0, -3]),
        derive("MLP latent 80 = n_latents", INDEX, 3, [0, 80]),
        derive("MLP latent 79 (last)", OK, 3, [0, 79]),
        derive("attention latent 56 = n_latents", INDEX, 4, [0, 56]),
        derive("attention latent -56 (first)", OK, 4, [0, -56]),
        derive("autoencoder_latent with no such autoencoder", MISSING, 2, [0, 0]),
        derive("layer 3 = n_layers", INDEX, 0, layer: 3, [0, 0]),
        derive("layer -1", INDEX, 0, layer: -1, [0, 0]),
        derive("node type 5", INVALID, 5, [0, 0]),
        derive("node type -1", INVALID, -1, [0, 0]),
        derive("3 indices for an MLP neuron", INVALID, 0, [0, 0, 0]),
        derive("2 indices for an attention head", INVALID, 1, [0, 0]),
        derive("out_len = T × d_model − 1", SMALL, 0, [0, 0], outLen: T * D - 1),
        derive("out_len = 0", SMALL, 1, [0, 0, 0], outLen: 0),
        derive("out_len = SIZE_MAX is a capacity, not a size", OK, 1, [0, 0, 0], outLen: -1),
        Row(what: "n_nodes = SIZE_MAX", status: INVALID) { out in
            var node = nodeIndex(0, layer: 0, [0, 0])
            return nw_node_write_vectors(setup.model, setup.store, &node, -1, out, -1, nil)
        },
        Row(what: "n_nodes × d_model overflows", status: INVALID) { out in
            var node = nodeIndex(0, layer: 0, [0, 0])
            return nw_node_write_vectors(setup.model, setup.store, &node, Int.max / 2, out, -1, nil)
        },
        Row(what: "n_nodes = 0 writes nothing", status: OK) { out in
            nw_node_write_vectors(setup.model, setup.store, nil, 0, out, 0, nil)
        },
        Row(what: "reserved = 1", status: INVALID) { out in
            var node = nodeIndex(0, layer: 0, [0, 0])
            node.reserved = 1
            return nw_node_write(setup.model, setup.store, &node, out, T * D)
        },
        Row(what: "NULL node", status: INVALID) { out in nw_node_write(setup.model, setup.store, nil, out, T * D) },
        Row(what: "NULL model", status: INVALID) { out in
            var node = nodeIndex(0, layer: 0, [0, 0])
            return nw_node_write(nil, setup.store, &node, out, T * D)
        },
        Row(what: "NULL store", status: INVALID) { out in
            var node = nodeIndex(0, layer: 0, [0, 0])
            return nw_node_write(setup.model, nil, &node, out, T * D)
        },
        Row(what: "NULL out", status: INVALID) { _ in
            var node = nodeIndex(0, layer: 0, [0, 0])
            return nw_node_write(setup.model, setup.store, &node, nil, T * D)
        },
        // Activations that are missing or disagree with the model.
        Row(what: "attn.v missing", status: MISSING) { out in
            let s = Setup(autoencoders: "none")
            _ = nw_store_remove(s.store, 2, 0)
            var node = nodeIndex(1, layer: 0, [0, 0, 0])
            return nw_node_write(s.model, s.store, &node, out, T * D)
        },
        Row(what: "mlp.post_act of width 191", status: SHAPE) { out in
            let s = Setup(autoencoders: "none")
            let b = s.keep(Buffer([Float](repeating: 0, count: 7 * 191), shape: [7, 191], dtype: 0))
            _ = b.withView { nw_store_put(s.store, 0, 0, $0) }
            var node = nodeIndex(0, layer: 0, [0, 0])
            return nw_node_write(s.model, s.store, &node, out, T * D)
        },
        Row(what: "attn.v with 6 key tokens for 7 in attn.qk_probs", status: SHAPE) { out in
            let s = Setup(autoencoders: "none")
            let b = s.keep(Buffer([Float](repeating: 0, count: 6 * 48), shape: [6, 3, 16], dtype: 0))
            _ = b.withView { nw_store_put(s.store, 2, 0, $0) }
            var node = nodeIndex(1, layer: 0, [0, 0, 0])
            return nw_node_write(s.model, s.store, &node, out, T * D)
        },
        Row(what: "derive_vector with out_len = d_model − 1", status: SMALL) { out in
            var node = nodeIndex(1, layer: 0, [0, 0, 0])
            var d: OpaquePointer?
            _ = nw_node_write_deriver_create(setup.model, &node, &d)
            defer { nw_deriver_destroy(d) }
            return nw_deriver_derive_vector(d, setup.store, out, D - 1, nil)
        },
        Row(what: "output_shape NULL shape", status: INVALID) { _ in
            var node = nodeIndex(1, layer: 0, [0, 0, 0])
            var d: OpaquePointer?
            _ = nw_node_write_deriver_create(setup.model, &node, &d)
            defer { nw_deriver_destroy(d) }
            return nw_deriver_output_shape(d, setup.store, nil)
        },
        Row(what: "requirements NULL out with capacity 2", status: INVALID) { _ in
            var node = nodeIndex(1, layer: 0, [0, 0, 0])
            var d: OpaquePointer?, count = 0
            _ = nw_node_write_deriver_create(setup.model, &node, &d)
            defer { nw_deriver_destroy(d) }
            return nw_deriver_requirements(d, nil, 2, &count)
        },
        // Names.
        Row(what: "unknown node type name", status: INVALID) { _ in
            var v: Int32 = 0
            return nw_node_type_from_name("mlp_neurons", &v)
        },
        Row(what: "NULL name", status: INVALID) { _ in
            var v: Int32 = 0
            return nw_activation_from_name(nil, &v)
        },
        Row(what: "unsupported autoencoder input", status: NW_ERR_UNSUPPORTED.rawValue) { _ in
            var v: Int32 = 0
            return nw_autoencoder_input_from_name("attn_write", &v)
        },
    ]

    @Test("bad input", arguments: rows)
    func row(_ row: Row) {
        let sentinel = Float(bitPattern: 0x7fc0_beef)
        var out = [Float](repeating: sentinel, count: Self.T * Self.D)
        let status = out.withUnsafeMutableBufferPointer { row.call($0.baseAddress!) }
        #expect(status == row.status, "\(String(cString: nw_status_string(status))): \(lastError)")
        if row.status != Self.OK {
            #expect(!lastError.isEmpty)
            #expect(out.allSatisfy { $0.bitPattern == sentinel.bitPattern }, "output written on error")
        }
    }

    @Test("names round-trip, and statuses have names")
    func names() {
        for (lookup, from, count) in [(nw_node_type_name, nw_node_type_from_name, 5), (nw_activation_name, nw_activation_from_name, 12),
                                      (nw_weight_name, nw_weight_from_name, 18), (nw_dtype_name, nw_dtype_from_name, 4)] {
            for v in 0..<Int32(count) {
                var back: Int32 = -1
                #expect(from(lookup(v), &back) == Self.OK && back == v)
            }
            #expect(lookup(Int32(count)) == nil && lookup(-1) == nil)
        }
        #expect(String(cString: nw_status_string(-2)) == "NW_ERR_INDEX_OUT_OF_RANGE")
        #expect(String(cString: nw_status_string(-9)) == "NW_ERR_STALE_INPUT")
        #expect(String(cString: nw_status_string(-10)) == "NW_ERR_UNKNOWN")
        #expect(String(cString: nw_version_string()) == NW_VERSION_STRING && nw_abi_version() == NW_ABI_VERSION)
    }
}

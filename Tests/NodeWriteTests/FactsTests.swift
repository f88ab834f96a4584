import CNodeWrite
@testable import NodeWriteCore
import Testing

/// The facts of the C ABI (nw_*_info_get, nw_saelens_hook_find): every row agrees with the
/// enumerations, the name functions and the shapes the library actually checks and reports.
@Suite("Facts")
struct FactsTests {
    static let OK = NW_OK.rawValue, INVALID = NW_ERR_INVALID_ARGUMENT.rawValue
    static let INDEX = NW_ERR_INDEX_OUT_OF_RANGE.rawValue, UNSUPPORTED = NW_ERR_UNSUPPORTED.rawValue

    /// Row `i` of a table through its _info_get, or nil past the last row.
    static func info<T>(_ get: (Int32, UnsafeMutablePointer<T>) -> Int32, _ i: Int32, _ empty: T) -> T? {
        var v = empty
        withUnsafeMutableBytes(of: &v) { $0.storeBytes(of: MemoryLayout<T>.size, as: Int.self) }
        let status = get(i, &v)
        if status == INDEX { return nil }
        #expect(status == OK, "row \(i): status \(status)")
        #expect(withUnsafeBytes(of: &v) { $0.load(as: Int.self) } == MemoryLayout<T>.size, "row \(i): size")
        return v
    }

    /// Every row of a table, asked 0, 1, ... until NW_ERR_INDEX_OUT_OF_RANGE.
    static func rows<T>(_ get: (Int32, UnsafeMutablePointer<T>) -> Int32, _ empty: T) -> [T] {
        var out: [T] = []
        while out.count < 1000, let v = info(get, Int32(out.count), empty) { out.append(v) }
        #expect(info(get, -1, empty) == nil, "index -1")
        return out
    }

    static func string(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }
    static func array<T>(_ tuple: (T, T, T, T), _ n: Int32) -> [T] { Array([tuple.0, tuple.1, tuple.2, tuple.3].prefix(Int(n))) }
    static func dims(_ tuple: (Int32, Int32, Int32, Int32), _ n: Int32) -> [Dim] { array(tuple, n).map { Dim(rawValue: $0)! } }

    @Test("node types: one row per enum value, agreeing with the names, index counts and the table")
    func nodeTypes() throws {
        let rows = Self.rows(nw_node_type_info_get, nw_node_type_info())
        #expect(rows.count == NodeType.allCases.count)
        for (i, r) in rows.enumerated() {
            let type = try #require(NodeType(rawValue: Int32(i)))
            #expect(Self.string(r.name) == Self.string(nw_node_type_name(Int32(i))))
            #expect(r.n_indices == nw_node_type_index_count(Int32(i)) && Int(r.n_indices) == type.indexCount)
            let names = [r.index_names.0, r.index_names.1, r.index_names.2, r.index_names.3].map(Self.string)
            #expect(names == type.kind.indexNames.map(\.description) + Array(repeating: nil, count: 4 - type.indexCount))
            #expect((r.is_latent != 0) == type.isLatent)
            #expect(Self.array(r.activations, r.n_activations) == type.kind.activations.map(\.rawValue))
            #expect(r.weight == type.kind.weight?.rawValue ?? -1)
            #expect(r.width_dim == type.kind.width.rawValue)
            // The first activation holds the node's scalars: (T, ..., width), and latents read
            // the activation whose latent node type they are.
            let first = try #require(ActivationLocation(rawValue: r.activations.0))
            #expect(first.dims.first == .tokens && first.dims.last == type.kind.width)
            #expect(type.isLatent == (first.latentNodeType == type))
        }
    }

    @Test("derived scalars: one row per enum value, agreeing with the names and the spec")
    func derivedScalars() throws {
        let rows = Self.rows(nw_dst_info_get, nw_dst_info())
        #expect(rows.count == DerivedScalar.allCases.count)
        for (i, r) in rows.enumerated() {
            let spec = try #require(DerivedScalar(rawValue: Int32(i))).spec
            #expect(Self.string(r.name) == Self.string(nw_dst_name(Int32(i))))
            var back: Int32 = -1
            #expect(nw_dst_from_name(r.name, &back) == Self.OK && back == Int32(i))
            #expect(r.node_type == spec.nodeType?.rawValue ?? -1)
            if spec.edge == nil {
                #expect((Int64(r.layout) == Int64(NW_LAYOUT_LAYER.rawValue)) == (r.node_type == -1))
                #expect(Int64(r.quantity) == Int64(spec.quantity == .norm ? NW_QUANTITY_NORM.rawValue : NW_QUANTITY_PROJECTION.rawValue))
            } else {
                // Edges (nw_derive_node): their own quantities and layouts, appended to the header's enums.
                #expect(r.quantity == spec.quantity.rawValue && r.quantity >= Int32(NW_QUANTITY_IN_EDGE.rawValue))
                #expect(r.layout != Int32(NW_LAYOUT_LAYER.rawValue))
            }
            #expect(r.layout == spec.layout.rawValue)
            #expect((r.needs_direction != 0) == (spec.quantity == .projection))
            #expect(r.has_layer == (spec.hasLayer ? 1 : 0))
            #expect(Self.dims(r.dims, r.ndim) == spec.dims && [r.dims.0, r.dims.1, r.dims.2, r.dims.3][Int(r.ndim)...].allSatisfy { $0 == 0 })
            #expect(Self.array(r.activations, r.n_activations) == spec.activations.map(\.rawValue))
            // TDB's naming: a projection's name says "to_final_residual_grad", a norm's "norm".
            let name = spec.name.description
            #expect(name.contains("to_final_residual_grad") == (spec.quantity == .projection))
        }
    }

    @Test("activations, weights, dtypes, autoencoder inputs: one row per enum value, agreeing with the names")
    func otherTables() throws {
        let acts = Self.rows(nw_activation_info_get, nw_activation_info())
        #expect(acts.count == ActivationLocation.allCases.count)
        for (i, r) in acts.enumerated() {
            let a = try #require(ActivationLocation(rawValue: Int32(i)))
            #expect(Self.string(r.name) == Self.string(nw_activation_name(Int32(i))))
            #expect(Self.dims(r.dims, r.ndim) == a.dims && (r.has_layer != 0) == a.hasLayer)
            #expect(r.latent_node_type == a.latentNodeType?.rawValue ?? -1)
            #expect(a.name.description.hasPrefix("online_") == (a.latentNodeType != nil))
        }
        let weights = Self.rows(nw_weight_info_get, nw_weight_info())
        #expect(weights.count == WeightLocation.allCases.count)
        for (i, r) in weights.enumerated() {
            let w = try #require(WeightLocation(rawValue: Int32(i)))
            #expect(Self.string(r.name) == Self.string(nw_weight_name(Int32(i))))
            #expect(Self.dims(r.dims, r.ndim) == w.dims && (r.has_layer != 0) == w.hasLayer)
        }
        let dtypes = Self.rows(nw_dtype_info_get, nw_dtype_info())
        #expect(dtypes.count == DType.allCases.count)
        let sizes: [String: Int32] = ["float32": 4, "float16": 2, "bfloat16": 2, "float64": 8]
        for (i, r) in dtypes.enumerated() {
            #expect(Self.string(r.name) == Self.string(nw_dtype_name(Int32(i))))
            #expect(r.item_size == sizes[Self.string(r.name) ?? ""] && r.reserved == 0)
        }
        let inputs = Self.rows(nw_autoencoder_input_info_get, nw_autoencoder_input_info())
        #expect(inputs.count == AutoencoderInput.allCases.count)
        for (i, r) in inputs.enumerated() {
            let a = try #require(AutoencoderInput(rawValue: Int32(i)))
            #expect(Self.string(r.name) == a.name.description)
            #expect(r.input_dim == a.inputDim.rawValue && r.weight == a.weight?.rawValue ?? -1)
            // The TDB names nw_autoencoder_input_from_name maps to this kind exist.
            #expect(AutoencoderInput.sources.contains { $0.input == a })
        }
    }

    @Test("the enumerations' raw values are the header's constants")
    func constants() {
        let dims: [nw_dim] = [NW_DIM_NONE, NW_DIM_ONE, NW_DIM_TOKENS, NW_DIM_TOKEN_PAIRS, NW_DIM_HEADS, NW_DIM_D_HEAD,
                              NW_DIM_D_MODEL, NW_DIM_D_FF, NW_DIM_LATENTS, NW_DIM_VOCAB, NW_DIM_HEAD_CHANNELS]
        #expect(Dim.allCases.map { Int64($0.rawValue) } == dims.map { Int64($0.rawValue) })
        let layouts: [DerivedScalarSpec.Layout] = [.nodes, .unflattened, .flattened, .perSequenceToken, .layer]
        let cLayouts: [nw_dst_layout] = [NW_LAYOUT_NODES, NW_LAYOUT_UNFLATTENED, NW_LAYOUT_FLATTENED,
                                         NW_LAYOUT_PER_SEQUENCE_TOKEN, NW_LAYOUT_LAYER]
        #expect(layouts.map { Int64($0.rawValue) } == cLayouts.map { Int64($0.rawValue) })
        #expect(Int64(DerivedScalarSpec.Quantity.norm.rawValue) == Int64(NW_QUANTITY_NORM.rawValue))
        #expect(Int64(DerivedScalarSpec.Quantity.projection.rawValue) == Int64(NW_QUANTITY_PROJECTION.rawValue))
    }

    @Test("SAELens hooks: the table, nw_saelens_hook_find and the checkpoint loader agree")
    func saeLensHooks() throws {
        let rows = Self.rows(nw_saelens_hook_info_get, nw_saelens_hook_info())
        #expect(rows.count == SAELensHook.table.count)
        for (i, r) in rows.enumerated() {
            let h = SAELensHook.table[i]
            #expect(Self.string(r.suffix) == h.suffix.description && r.node_type == h.nodeType.rawValue)
            #expect(r.input == h.input.rawValue && Self.string(r.tdb_input) == h.tdbInput.description)
            #expect(NodeType(rawValue: r.node_type)?.isLatent == true)
            // The TDB input names the same kind through nw_autoencoder_input_from_name.
            var kind: Int32 = -1
            #expect(nw_autoencoder_input_from_name(r.tdb_input, &kind) == Self.OK && kind == r.input)
            for layer in [0, 1, 2, 11] where layer >= r.min_layer && (r.max_layer < 0 || layer <= r.max_layer) {
                var row: Int32 = -1, l: Int32 = -1
                #expect(nw_saelens_hook_find("blocks.\(layer).\(Self.string(r.suffix)!)", &row, &l) == Self.OK)
                #expect(row == Int32(i) && l == Int32(layer))
                let loader = try Model.autoencoderInput(hookName: "blocks.\(layer).\(h.suffix)", "cfg")
                #expect(loader.layer == layer && loader.input == h.input)
            }
        }
        // Each suffix's rows cover every layer exactly once.
        for suffix in Set(rows.map { Self.string($0.suffix)! }) {
            for layer: Int32 in [0, 1, 5] {
                #expect(rows.filter { Self.string($0.suffix) == suffix && layer >= $0.min_layer && ($0.max_layer < 0 || layer <= $0.max_layer) }.count == 1)
            }
        }
        // The rows the SAELens adapter's module table lists.
        func find(_ name: String) -> (Int32, Int32, Int32) {
            var row: Int32 = -7, layer: Int32 = -7
            return (nw_saelens_hook_find(name, &row, &layer), row, layer)
        }
        func tdbInput(_ name: String) -> String? {
            let (s, row, _) = find(name)
            return s == Self.OK ? Self.string(rows[Int(row)].tdb_input) : nil
        }
        #expect(tdbInput("blocks.0.hook_resid_pre") == "resid_post_embedding")
        #expect(tdbInput("blocks.3.hook_resid_pre") == "resid_post_mlp")
        #expect(tdbInput("blocks.3.hook_resid_mid") == "resid_post_attn")
        #expect(tdbInput("blocks.3.hook_resid_post") == "resid_post_mlp")
        #expect(tdbInput("blocks.2.mlp.hook_post") == "mlp_post_act")
        #expect(tdbInput("blocks.2.attn.hook_z") == "attn_weighted_sum_of_values")
        #expect(tdbInput("blocks.2.hook_mlp_out") == "resid_delta_mlp")
        #expect(tdbInput("blocks.2.hook_attn_out") == "resid_delta_attn")
        for bad in ["", "hook_embed", "blocks.", "blocks.1", "blocks.1.", "blocks..hook_mlp_out", "blocks.01.hook_mlp_out",
                    "blocks.x.hook_mlp_out", "blocks.-1.hook_mlp_out", "block.1.hook_mlp_out", "blocks.99999999999999999999.hook_mlp_out"] {
            #expect(find(bad) == (Self.INVALID, -7, -7), "\(bad)")
        }
        for unread in ["blocks.1.attn.hook_q", "blocks.1.hook_resid", "blocks.1.mlp.hook_pre", "blocks.1.hook_mlp_out.x"] {
            #expect(find(unread) == (Self.UNSUPPORTED, -7, -7), "\(unread)")
        }
        var row: Int32 = 0, layer: Int32 = 0
        #expect(nw_saelens_hook_find(nil, &row, &layer) == Self.INVALID)
        #expect(nw_saelens_hook_find("blocks.1.hook_mlp_out", nil, &layer) == Self.INVALID)
        #expect(nw_saelens_hook_find("blocks.1.hook_mlp_out", &row, nil) == Self.INVALID)
    }

    @Test("the size protocol: NULL, too small, larger (bytes past the library's untouched)")
    func sizeProtocol() {
        var small = nw_dtype_info()
        for size in [0, MemoryLayout<nw_dtype_info>.size - 1] {
            small.size = size
            #expect(nw_dtype_info_get(0, &small) == Self.INVALID && small.size == size && small.name == nil)
        }
        #expect(nw_dtype_info_get(0, nil) == Self.INVALID)
        let n = MemoryLayout<nw_node_type_info>.size
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n + 64, alignment: 16)
        defer { raw.deallocate() }
        raw.initializeMemory(as: UInt8.self, repeating: 0xA5, count: n + 64)
        raw.storeBytes(of: n + 64, as: Int.self)
        #expect(nw_node_type_info_get(1, raw.assumingMemoryBound(to: nw_node_type_info.self)) == Self.OK)
        #expect(raw.load(as: Int.self) == n)
        #expect((n..<(n + 64)).allSatisfy { raw.load(fromByteOffset: $0, as: UInt8.self) == 0xA5 })
        #expect(raw.assumingMemoryBound(to: nw_node_type_info.self).pointee.n_indices == 3)
    }

    // MARK: - Shape rules against the library

    /// The family fixture's model and store through the C ABI ("multi": an MLP and an attention
    /// autoencoder; "single": the MLP autoencoder as the generic autoencoder_latent).
    final class FamilyC: @unchecked Sendable {
        let model: OpaquePointer, store: OpaquePointer
        var keep: [Buffer] = []
        init(_ autoencoders: String) {
            let f = Fixture.family
            var d = nw_model_dims(n_layers: 3, d_model: 48, n_heads: 3, d_head: 16, d_ff: 192)
            var m: OpaquePointer?, s: OpaquePointer?
            _ = nw_model_create(&d, &m)
            _ = nw_store_create(&s)
            model = m!; store = s!
            let borrow = Int32(NW_BORROW.rawValue)
            func put(_ name: String, _ body: (UnsafePointer<nw_tensor_view>) -> Int32) {
                let b = Buffer(f[name]); keep.append(b)
                #expect(b.withView(body) == 0, "\(name)")
            }
            put("weights.unembedding") { nw_model_set_weight(model, 2, -1, $0, borrow) }
            put("weights.final_ln.gain") { nw_model_set_weight(model, 3, -1, $0, borrow) }
            for l in Int32(0)..<3 {
                put("weights.\(l).mlp.to_residual") { nw_model_set_weight(model, 0, l, $0, borrow) }
                put("weights.\(l).attn.to_residual") { nw_model_set_weight(model, 1, l, $0, borrow) }
                put("autoencoders.mlp.\(l).decoder_weight") { nw_model_set_autoencoder(model, autoencoders == "single" ? 2 : 3, l, 0, $0, borrow) }
                if autoencoders == "multi" {
                    put("autoencoders.attention.\(l).decoder_weight") { nw_model_set_autoencoder(model, 4, l, 1, $0, borrow) }
                }
                for a in ActivationLocation.allCases where f.has("activations.\(l).\(a.name)") {
                    put("activations.\(l).\(a.name)") { nw_store_put(store, a.rawValue, l, $0) }
                }
            }
        }
        deinit { nw_model_destroy(model); nw_store_destroy(store) }
    }

    /// Resolves a shape rule on the family model at `layer` (T from the store, n_latents from
    /// the autoencoder of `nodeType`, n_vocab from the unembedding), through the C ABI.
    static func resolve(_ dims: [Dim], _ c: FamilyC, layer: Int32, nodeType: Int32?) -> [Int64] {
        var d = nw_model_dims(), vocab: Int64 = 0, ae = nw_autoencoder_state()
        _ = nw_model_dims_get(c.model, &d)
        _ = nw_model_vocab_size(c.model, &vocab)
        if let nodeType, NodeType(rawValue: nodeType)?.isLatent == true {
            ae.size = MemoryLayout<nw_autoencoder_state>.size
            #expect(nw_model_autoencoder_get(c.model, nodeType, layer, &ae) == OK && ae.present == 1)
        }
        let tokens = Int64(Fixture.family["activations.0.mlp.post_act"].shape[0])
        return dims.map { dim -> Int64 in
            switch dim {
            case .none: -1
            case .one: 1
            case .tokens: tokens
            case .tokenPairs: tokens * (tokens + 1) / 2
            case .heads: d.n_heads
            case .dHead: d.d_head
            case .dModel: d.d_model
            case .dFF: d.d_ff
            case .latents: ae.n_latents
            case .vocab: vocab
            case .headChannels: d.n_heads * d.d_head
            }
        }
    }

    static let families = ["multi": FamilyC("multi"), "single": FamilyC("single")]

    @Test("every DST's dims, evaluated on the fixture model, are the out_shape nw_derive reports")
    func dstShapes() throws {
        let g = Buffer(Fixture.family["activations.final_residual_grad"])
        for dst in DerivedScalar.allCases where dst.spec.edge == nil {  // edges: EdgeTests, edges_parity.c
            var info = nw_dst_info()
            info.size = MemoryLayout<nw_dst_info>.size
            #expect(nw_dst_info_get(dst.rawValue, &info) == Self.OK)
            let c = Self.families[dst.spec.nodeType == .autoencoderLatent ? "single" : "multi"]!
            for layer in Int32(0)..<3 {
                var shape = [Int64](repeating: -1, count: 3), ndim: Int32 = -1
                let status = g.withView { gv in
                    nw_derive(c.model, c.store, dst.rawValue, layer, info.needs_direction != 0 ? gv : nil, 0, nil, 0, &shape, &ndim)
                }
                #expect(status == NW_ERR_BUFFER_TOO_SMALL.rawValue, "\(dst.name)")
                let want = Self.resolve(Self.dims(info.dims, info.ndim), c, layer: layer, nodeType: info.node_type)
                #expect(ndim == info.ndim && Array(shape.prefix(Int(ndim))) == want, "\(dst.name) L\(layer): \(shape) vs \(want)")
            }
        }
    }

    @Test("every activation's and weight's dims are the shapes the library accepts, and one off is refused")
    func activationAndWeightShapes() throws {
        let c = Self.families["multi"]!
        for a in ActivationLocation.allCases where Fixture.family.has("activations.0.\(a.name)") {
            // The fixture's activations (which the family tests derive from) have the rule's shape
            // (the residual stream and attn.v_out, which only edges read: EdgeTests).
            guard let dst = DerivedScalar.allCases.first(where: { $0.spec.activations.contains(a) }) else {
                Issue.record("\(a.name) is read by no DST"); continue
            }
            let family = Self.families[a.latentNodeType == .autoencoderLatent ? "single" : "multi"]!
            let want = Self.resolve(a.dims, family, layer: 0, nodeType: a.latentNodeType?.rawValue ?? dst.spec.nodeType?.rawValue)
            let f = Fixture.family["activations.0.\(a.name)"]
            #expect(f.shape == want, "\(a.name): fixture \(f.shape) vs rule \(want)")
        }
        for w in WeightLocation.allCases {
            var state = nw_weight_state()
            state.size = MemoryLayout<nw_weight_state>.size
            #expect(nw_model_weight_get(c.model, w.rawValue, w.hasLayer ? 0 : -1, &state) == Self.OK)
            let want = Self.resolve(w.dims, c, layer: 0, nodeType: nil)
            // The family model holds the write side; the read side (edges) is checked below only.
            if w.rawValue <= WeightLocation.layerNormGainFinal.rawValue {
                #expect(state.present == 1 && Array([state.shape.0, state.shape.1, state.shape.2, state.shape.3].prefix(Int(state.ndim))) == want,
                        "\(w.name)")
            }
            // The model refuses the rule's shape with one dimension off by one.
            var d = nw_model_dims(n_layers: 1, d_model: 4, n_heads: 2, d_head: 3, d_ff: 5)
            var m: OpaquePointer?
            #expect(nw_model_create(&d, &m) == Self.OK)
            defer { nw_model_destroy(m) }
            let dims = w.dims.map { dim -> Int64 in
                switch dim { case .dModel: 4; case .heads: 2; case .dHead: 3; case .dFF: 5; case .vocab: 7; default: 1 }
            }
            let layer: Int32 = w.hasLayer ? 0 : -1
            func set(_ shape: [Int64]) -> Int32 {
                let b = Buffer([Float](repeating: 0, count: Int(shape.reduce(1, *))), shape: shape, dtype: 0)
                return b.withView { nw_model_set_weight(m, w.rawValue, layer, $0, Int32(NW_COPY.rawValue)) }
            }
            #expect(set(dims) == Self.OK, "\(w.name)")
            for k in dims.indices where w.dims[k] != .vocab {
                var off = dims
                off[k] += 1
                #expect(set(off) == NW_ERR_SHAPE_MISMATCH.rawValue, "\(w.name) dim \(k)")
            }
        }
    }

    @Test("every activation's rule, one dimension off by one, is refused by a derive that reads it")
    func activationShapesRefused() throws {
        let f = Fixture.family
        let g = Buffer(f["activations.final_residual_grad"])
        // The write family's activations (edges read the residual stream and attn.v_out: EdgeTests, boundary rows).
        for a in ActivationLocation.allCases where f.has("activations.0.\(a.name)") {
            let family = Self.families[a.latentNodeType == .autoencoderLatent ? "single" : "multi"]!
            let dst = try #require(DerivedScalar.allCases.first { $0.spec.edge == nil && $0.spec.activations.contains(a) })
            for k in a.dims.indices where k > 0 || a == .attnValue {
                var s: OpaquePointer?
                #expect(nw_store_create(&s) == Self.OK)
                defer { nw_store_destroy(s) }
                var keep: [Buffer] = []
                for b in ActivationLocation.allCases where f.has("activations.0.\(b.name)") {
                    var t = Buffer(f["activations.0.\(b.name)"])
                    if b == a {
                        var shape = t.shape
                        shape[k] += 1
                        t = Buffer([Float](repeating: 0, count: Int(shape.reduce(1, *))), shape: shape, dtype: 0)
                    }
                    keep.append(t)
                    #expect(t.withView { nw_store_put(s, b.rawValue, 0, $0) } == Self.OK)
                }
                var shape = [Int64](repeating: 0, count: 3), ndim: Int32 = 0
                let status = g.withView { gv in
                    nw_derive(family.model, s, dst.rawValue, 0, dst.spec.needsDirection ? gv : nil, 0, nil, 0, &shape, &ndim)
                }
                #expect(status == NW_ERR_SHAPE_MISMATCH.rawValue, "\(a.name) dim \(k) + 1 (\(dst.name)): \(status)")
                _ = keep
            }
        }
    }

    @Test("every autoencoder input's n_inputs rule is what nw_model_set_autoencoder accepts")
    func autoencoderInputShapes() {
        var d = nw_model_dims(n_layers: 1, d_model: 4, n_heads: 2, d_head: 3, d_ff: 5)
        for input in AutoencoderInput.allCases {
            guard let n = d.size(input.inputDim) else { Issue.record("\(input.name)"); continue }
            for (inputs, want) in [(n, Self.OK), (n + 1, NW_ERR_SHAPE_MISMATCH.rawValue)] {
                var m: OpaquePointer?  // a fresh model: one autoencoder per slot
                #expect(nw_model_create(&d, &m) == Self.OK)
                defer { nw_model_destroy(m) }
                let b = Buffer([Float](repeating: 0, count: 3 * inputs), shape: [3, Int64(inputs)], dtype: 0)
                #expect(b.withView { nw_model_set_autoencoder(m, 3, 0, input.rawValue, $0, Int32(NW_COPY.rawValue)) } == want,
                        "\(input.name) n_inputs \(inputs)")
            }
        }
    }

    @Test("slot states of a loaded checkpoint: every weight, the layer-less ones included, the library's own in its file's dtype")
    func checkpointSlots() throws {
        let dir = Fixture.directory.appendingPathComponent("checkpoints").path
        for (file, dtype) in [("gpt2/model.safetensors", NW_DTYPE_F32), ("gpt2_f16/model.safetensors", NW_DTYPE_F16),
                              ("tl/model.safetensors", NW_DTYPE_F32)] {
            var m: OpaquePointer?
            #expect(nw_model_load_safetensors("\(dir)/\(file)", &m) == Self.OK, "\(file)")
            defer { nw_model_destroy(m) }
            var d = nw_model_dims()
            _ = nw_model_dims_get(m, &d)
            var vocab: Int64 = 0
            _ = nw_model_vocab_size(m, &vocab)
            // The write side (the loader does not read the read-side weights edges need yet).
            for w in WeightLocation.allCases where w.rawValue <= WeightLocation.layerNormGainFinal.rawValue {
                for layer in w.hasLayer ? Array(0..<Int32(d.n_layers)) : [Int32(NW_NO_LAYER)] {
                    var s = nw_weight_state()
                    s.size = MemoryLayout<nw_weight_state>.size
                    #expect(nw_model_weight_get(m, w.rawValue, layer, &s) == Self.OK)
                    let want = w.dims.map { dim -> Int64 in
                        switch dim {
                        case .dFF: d.d_ff; case .dModel: d.d_model; case .heads: d.n_heads; case .dHead: d.d_head
                        case .vocab: vocab; default: -1
                        }
                    }
                    // Checkpoint tensors are read into the library's memory (never mapped): NW_COPY, in the file's dtype.
                    #expect(s.present == 1 && s.dtype == Int32(dtype.rawValue) && s.ownership == Int32(NW_COPY.rawValue),
                            "\(file) \(w.name) L\(layer): present \(s.present) dtype \(s.dtype) ownership \(s.ownership)")
                    #expect(Array([s.shape.0, s.shape.1, s.shape.2, s.shape.3].prefix(Int(s.ndim))) == want, "\(file) \(w.name)")
                }
            }
        }
        // An SAELens autoencoder: its slot says what it holds; the other slots are empty.
        var m: OpaquePointer?
        #expect(nw_model_load_safetensors("\(dir)/gpt2/model.safetensors", &m) == Self.OK)
        defer { nw_model_destroy(m) }
        #expect(nw_model_load_autoencoder_safetensors(m, "\(dir)/sae_mlp", 3, 0) == Self.OK)
        for type in NodeType.allCases where type.isLatent {
            var a = nw_autoencoder_state()
            a.size = MemoryLayout<nw_autoencoder_state>.size
            #expect(nw_model_autoencoder_get(m, type.rawValue, 0, &a) == Self.OK)
            if type == .mlpAutoencoderLatent {
                #expect(a.present == 1 && a.input == Int32(NW_AE_INPUT_MLP_POST_ACT.rawValue) && a.dtype == Int32(NW_DTYPE_F32.rawValue)
                        && a.ownership == Int32(NW_COPY.rawValue) && a.n_latents == 40 && a.n_inputs == 64)
            } else {
                #expect(a.present == 0 && a.input == 0 && a.dtype == 0 && a.ownership == 0 && a.n_latents == 0 && a.n_inputs == 0)
            }
        }
    }
}

extension nw_model_dims {
    func size(_ dim: Dim) -> Int? {
        switch dim {
        case .dModel: Int(d_model)
        case .dFF: Int(d_ff)
        case .headChannels: Int(n_heads * d_head)
        default: nil
        }
    }
}

import CNodeWrite
import Testing

/// Properties that follow from the definitions, beside the golden cases.
@Suite("Properties")
struct PropertyTests {
    static let setup = Setup(autoencoders: "multi")
    static let (T, D) = (7, 48)

    /// The write vector of one node (and its token row).
    static func vector(_ type: Int32, layer: Int32, _ indices: [Int64]) -> ([Float], Int64) {
        var node = nodeIndex(type, layer: layer, indices)
        var out = [Float](repeating: .nan, count: D), row: Int64 = -1
        var d: OpaquePointer?
        #expect(nw_node_write_deriver_create(setup.model, &node, &d) == 0)
        #expect(nw_deriver_derive_vector(d, setup.store, &out, out.count, &row) == 0)
        nw_deriver_destroy(d)
        return (out, row)
    }

    /// Checks that, at every token t, the bias plus the write vectors of `nodes(t)` equal
    /// `delta[t]`. The original's own forward pass agrees with such a sum to about 5e-6; a
    /// float32 sum of the same products in another order may differ by a few times that.
    static func expectLayerSum(_ layer: Int32, delta deltaName: String, bias biasName: String,
                               nodeType: Int32, nodes: (Int64) -> [[Int64]]) {
        let f = Fixture.shared
        let delta = f["activations.\(layer).\(deltaName)"].values
        let tolerance: Float = 2e-5 * max(1, delta.map(abs).max()!)
        for t in 0..<T {
            var sum = f["checkpoint.xf_layers.\(layer).\(biasName)"].values
            for indices in nodes(Int64(t)) {
                let (v, row) = vector(nodeType, layer: layer, indices)
                #expect(row == Int64(t))
                for j in 0..<D { sum[j] += v[j] }
            }
            let diff = (0..<D).map { abs(sum[$0] - delta[t * D + $0]) }.max()!
            #expect(diff <= tolerance, "layer \(layer) token \(t): \(diff)")
        }
    }

    @Test("attention node writes of a layer sum to resid.delta_attn minus the bias", arguments: 0..<3)
    func attentionLayerSum(_ layer: Int32) {
        // every key token k <= q, every head
        Self.expectLayerSum(layer, delta: "resid.delta_attn", bias: "attn.out_proj.bias", nodeType: 1) { q in
            (0...q).flatMap { k in (0..<3).map { h in [q, k, Int64(h)] } }
        }
    }

    @Test("MLP node writes of a layer sum to resid.delta_mlp minus the bias", arguments: 0..<3)
    func mlpLayerSum(_ layer: Int32) {
        Self.expectLayerSum(layer, delta: "resid.delta_mlp", bias: "mlp.out_layer.bias", nodeType: 0) { t in
            (0..<192).map { n in [t, Int64(n)] }
        }
    }

    /// Every node of every type at layer 1, some with negative indices.
    static let nodes: [nw_node_index] = {
        var nodes: [nw_node_index] = []
        for t: Int64 in [0, 3, -1] {
            nodes.append(nodeIndex(0, layer: 1, [t, 17]))
            nodes.append(nodeIndex(1, layer: 1, [t, -2, 2]))
            nodes.append(nodeIndex(3, layer: 1, [t, 5]))
            nodes.append(nodeIndex(4, layer: 1, [t, -1]))
        }
        return nodes
    }()

    @Test("a batch equals a loop of single nodes")
    func batchEqualsLoop() {
        var out = [Float](repeating: .nan, count: Self.nodes.count * Self.D)
        var rows = [Int64](repeating: -1, count: Self.nodes.count)
        #expect(nw_node_write_vectors(Self.setup.model, Self.setup.store, Self.nodes, Self.nodes.count,
                                      &out, out.count, &rows) == 0, "\(lastError)")
        for (i, node) in Self.nodes.enumerated() {
            var v = [Float](repeating: .nan, count: Self.D), row: Int64 = -1
            var d: OpaquePointer?, n = node
            #expect(nw_node_write_deriver_create(Self.setup.model, &n, &d) == 0)
            #expect(nw_deriver_derive_vector(d, Self.setup.store, &v, v.count, &row) == 0)
            nw_deriver_destroy(d)
            #expect(Array(out[i * Self.D..<(i + 1) * Self.D]) == v)
            #expect(rows[i] == row)
        }
    }

    @Test("a batch with one bad node writes nothing and names it")
    func batchAllOrNothing() {
        var nodes = Self.nodes
        nodes[5] = nodeIndex(0, layer: 1, [7, 0])  // token 7 of 7
        var out = [Float](repeating: 42, count: nodes.count * Self.D)
        var rows = [Int64](repeating: 42, count: nodes.count)
        #expect(nw_node_write_vectors(Self.setup.model, Self.setup.store, nodes, nodes.count, &out, out.count, &rows)
            == NW_ERR_INDEX_OUT_OF_RANGE.rawValue)
        #expect(lastError.hasPrefix("nodes[5]"))
        #expect(out.allSatisfy { $0 == 42 } && rows.allSatisfy { $0 == 42 })
    }

    @Test("a deriver captures the model's weights when it is made")
    func deriverSnapshot() {
        let setup = Setup(autoencoders: "none")
        var node = nodeIndex(0, layer: 0, [5, 8])
        var d: OpaquePointer?
        #expect(nw_node_write_deriver_create(setup.model, &node, &d) == 0)
        var before = [Float](repeating: 0, count: Self.D), after = before
        #expect(nw_deriver_derive_vector(d, setup.store, &before, Self.D, nil) == 0)
        // Replacing the weight on the model does not change a deriver made earlier.
        let zeros = setup.keep(Buffer([Float](repeating: 0, count: 192 * 48), shape: [192, 48], dtype: 0))
        #expect(zeros.withView { nw_model_set_weight(setup.model, 0, 0, $0, 0) } == 0)
        #expect(nw_deriver_derive_vector(d, setup.store, &after, Self.D, nil) == 0)
        #expect(before == after && before.contains { $0 != 0 })
        nw_deriver_destroy(d)
        var full = [Float](repeating: .nan, count: Self.D * Self.T)
        #expect(nw_node_write(setup.model, setup.store, &node, &full, full.count) == 0)
        #expect(full.allSatisfy { $0 == 0 })
    }
}

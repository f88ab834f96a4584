@testable import NodeWriteCore
import Testing

/// Node sets, tested at the core's own API.
@Suite("Node sets")
struct NodeSetTests {
    static let multi = try! CoreSetup(autoencoders: "multi")
    static let single = try! CoreSetup(autoencoders: "single")
    static let transposed = try! CoreSetup(autoencoders: "multi", transposed: true)

    /// Every node type with a spread of indices, negative ones and repeats included.
    static func sets() -> [(CoreSetup, NodeType, [[Int]])] {
        let tokens = [0, 3, -1, 6, 3]
        var out: [(CoreSetup, NodeType, [[Int]])] = []
        for s in [multi, transposed] {
            out.append((s, .mlpNeuron, tokens.flatMap { t in [0, 17, 191, -1, 17].map { [t, $0] } }))
            out.append((s, .attentionHead, tokens.flatMap { q in [0, 2, -3].flatMap { k in [0, 2, -1, 1].map { [q, k, $0] } } }))
            out.append((s, .mlpAutoencoderLatent, tokens.flatMap { t in [0, 5, 79, -2].map { [t, $0] } }))
            out.append((s, .attentionAutoencoderLatent, tokens.flatMap { t in [0, 5, 55, -2].map { [t, $0] } }))
        }
        out.append((single, .autoencoderLatent, tokens.flatMap { t in [0, 5, 79, -2].map { [t, $0] } }))
        return out
    }

    @Test("a node set equals its nodes' single writes, bit for bit")
    func setEqualsSingles() throws {
        for (setup, type, indices) in Self.sets() {
            for layer in 0..<3 {
                let (values, rows) = try setup.writes(type, layer: layer, indices)
                for (i, node) in indices.enumerated() {
                    let (v, row) = try setup.single(type, layer: layer, node)
                    #expect(Int(rows[i]) == row, "\(type) \(node)")
                    #expect(Array(values[(i * 48)..<((i + 1) * 48)]).map(\.bitPattern) == v.map(\.bitPattern), "\(type) L\(layer) \(node)")
                }
            }
        }
    }

    @Test("attention writes of a layer, as one node set, sum to resid.delta_attn minus the bias", arguments: 0..<3)
    func attentionLayerSum(_ layer: Int) throws {
        for setup in [Self.multi, Self.transposed] {
            try expectLayerSum(setup, layer, .attentionHead, delta: "resid.delta_attn", bias: "attn.out_proj.bias") { q in
                (0...q).flatMap { k in (0..<3).map { [q, k, $0] } }
            }
        }
    }

    @Test("MLP writes of a layer, as one node set, sum to resid.delta_mlp minus the bias", arguments: 0..<3)
    func mlpLayerSum(_ layer: Int) throws {
        for setup in [Self.multi, Self.transposed] {
            try expectLayerSum(setup, layer, .mlpNeuron, delta: "resid.delta_mlp", bias: "mlp.out_layer.bias") { t in
                (0..<192).map { [t, $0] }
            }
        }
    }

    /// At every token t, the bias plus the writes of `nodes(t)` equal delta[t] (the original's
    /// own forward pass agrees with such a sum to about 5e-6).
    func expectLayerSum(_ setup: CoreSetup, _ layer: Int, _ type: NodeType, delta: String, bias: String,
                        nodes: (Int) -> [[Int]]) throws {
        let f = Fixture.shared
        let expected = f["activations.\(layer).\(delta)"].values
        let tolerance: Float = 2e-5 * max(1, expected.map(abs).max()!)
        let all = (0..<7).flatMap(nodes)
        let (values, rows) = try setup.writes(type, layer: layer, all)
        var sums = (0..<7).map { _ in f["checkpoint.xf_layers.\(layer).\(bias)"].values }
        for i in 0..<all.count { for j in 0..<48 { sums[Int(rows[i])][j] += values[i * 48 + j] } }
        for t in 0..<7 {
            let diff = (0..<48).map { abs(sums[t][$0] - expected[t * 48 + $0]) }.max()!
            #expect(diff <= tolerance, "layer \(layer) token \(t): \(diff)")
        }
    }

    @Test("an empty set is valid and writes nothing")
    func emptySet() throws {
        let (values, _) = try Self.multi.writes(.attentionHead, layer: 0, [])
        #expect(values.isEmpty)
    }

    /// Bad sets: the error, and an output left untouched.
    @Test("bad sets raise the matching error and write nothing", arguments: [
        (NodeType.mlpNeuron, 0, [[0, 1], [0, 192]], NodeWriteError.Code.indexOutOfRange, "nodes[1]"),
        (.mlpNeuron, 0, [[0, 1], [7, 0]], .indexOutOfRange, "nodes[1]: node.indices[0] (token)"),
        (.attentionHead, 1, [[0, 0, 0], [0, 0, 0], [6, -8, 0]], .indexOutOfRange, "nodes[2]: node.indices[1] (key token)"),
        (.attentionHead, 1, [[0, 0, 3]], .indexOutOfRange, "head"),
        (.attentionHead, 1, [[0, 0]], .invalidArgument, "n_indices = 2 but attention_head takes 3"),
        (.mlpNeuron, 3, [[0, 0]], .indexOutOfRange, "layer = 3"),
        (.autoencoderLatent, 0, [[0, 0]], .missingInput, "no autoencoder"),
        (.mlpAutoencoderLatent, 2, [[0, 79], [Int.min, 0]], .indexOutOfRange, "nodes[1]"),
    ])
    func badSet(_ type: NodeType, _ layer: Int, _ indices: [[Int]], _ code: NodeWriteError.Code, _ message: String) {
        let setup = Self.multi
        let k = indices[0].count
        let flat = indices.flatMap { $0.map(Int64.init) }
        var out = [Float](repeating: 42, count: indices.count * 48)
        var rows = [Int64](repeating: 42, count: indices.count)
        do {
            try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
                let set = try NodeSet(model: setup.model, nodeType: type, layer: layer, indices: idx,
                                      count: indices.count, indexCount: k)
                try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in
                    try rows.withUnsafeMutableBufferPointer { (r) throws(NodeWriteError) in
                        try set.writes(setup.store, into: o, tokenRows: r.baseAddress)
                    }
                }
            }
            Issue.record("no error for \(indices)")
        } catch {
            #expect(error.code == code)
            #expect(error.message.contains(message), "\(error.message)")
        }
        #expect(out.allSatisfy { $0 == 42 } && rows.allSatisfy { $0 == 42 })
    }

    @Test("a buffer too small for the set is refused before anything is written")
    func smallBuffer() throws {
        let setup = Self.multi
        let flat: [Int64] = [0, 1, 1, 2]
        var out = [Float](repeating: 42, count: 95)
        #expect(throws: NodeWriteError.self) {
            try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
                let set = try NodeSet(model: setup.model, nodeType: .mlpNeuron, layer: 0, indices: idx, count: 2, indexCount: 2)
                try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in
                    try set.writes(setup.store, into: o, tokenRows: nil)
                }
            }
        }
        #expect(out.allSatisfy { $0 == 42 })
    }
}

/// Autoencoders on attention's z (heads · d_head), as SAELens trains on blocks.L.attn.hook_z:
/// the decoded vector goes through W_O.
@Suite("Autoencoders on attention's z")
struct AttentionZTests {
    /// A fixed pseudo-random decoder (n × heads · d_head).
    static func decoder(_ n: Int) -> [Float] {
        var state: UInt64 = 12345
        return (0..<(n * 48)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
    }

    @Test("a latent's write is z · Σ_h decoder[i, h, :] @ W_O[h], for every layout of W_O", arguments: [false, true])
    func writes(_ transposed: Bool) throws {
        let setup = try CoreSetup(autoencoders: "none", transposed: transposed)
        let n = 5, dec = Self.decoder(n)
        try setup.model.setAutoencoder(.attentionAutoencoderLatent, layer: 1, input: .attnZ,
                                       decoder: setup.view(dec, [n, 48]), copy: false)
        var z = [Float](repeating: 0, count: 7 * n)
        for i in z.indices { z[i] = Float(i % 3) - 0.5 }
        try setup.store.put(.onlineAttentionAutoencoderLatent, layer: 1, setup.view(z, [7, n]))
        let nodes = (0..<7).flatMap { t in (0..<n).map { [t, $0] } }
        let (got, _) = try setup.writes(.attentionAutoencoderLatent, layer: 1, nodes)
        let wO = Fixture.shared["weights.1.attn.to_residual"].values  // (3, 16, 48)
        for (r, node) in nodes.enumerated() {
            let (t, i) = (node[0], node[1])
            for j in 0..<48 {
                var want = 0.0
                for c in 0..<48 { want += Double(dec[i * 48 + c]) * Double(wO[c * 48 + j]) }
                want *= Double(z[t * n + i])
                #expect(abs(Double(got[r * 48 + j]) - want) <= 1e-5 * max(1, abs(want)), "\(node) \(j)")
            }
        }
    }
}

@testable import NodeWriteCore
import Testing

/// The write family beyond the fixture (whose gradient is zero except its last row): dense
/// random directions against a float64 reference built from the node writes, sums that equal
/// the layer quantities, unit directions, and thread counts.
@Suite("Write family properties")
struct FamilyPropertyTests {
    static let setup = FamilyTests.setups["multi"]!
    static let (T, D, H, FF) = (7, 48, 3, 192)

    /// A dense direction with entries in [-1, 1), from a fixed seed.
    static func denseDirection(seed: UInt64) -> [Float] {
        var state = seed
        return (0..<(T * D)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
        }
    }

    static func view(_ values: [Float], _ shape: [Int]) -> TensorView { setup.view(Fixture.Tensor(shape: shape.map(Int64.init), values: values)) }

    static func derive(_ dst: DerivedScalar, _ layer: Int, _ g: [Float]?, shape: [Int] = [T, D], threads: Int = 1) throws -> [Float] {
        try FamilyTests.derive(setup, dst, layer, threads: threads, direction: g.map { view($0, shape) }).0
    }

    /// Node writes (n × d_model) of a set, through the tested node-set path.
    static func writes(_ type: NodeType, _ layer: Int, _ indices: [[Int]]) throws -> [Float] {
        let flat = indices.flatMap { $0.map(Int64.init) }
        var out = [Float](repeating: .nan, count: indices.count * D)
        try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
            let set = try NodeSet(model: setup.model, nodeType: type, layer: layer, indices: idx, count: indices.count,
                                  indexCount: indices.first?.count ?? 2)
            try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try set.writes(setup.store, into: o, tokenRows: nil) }
        }
        return out
    }

    static func dot(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    static func expectNear(_ got: [Float], _ want: [Double], _ what: String) {
        #expect(got.count == want.count, "\(what): count")
        let tolerance = 1e-5 * max(1, want.map(abs).max() ?? 0)
        let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? 0
        #expect(worst <= tolerance, "\(what): max |diff| \(worst) > \(tolerance)")
    }

    @Test("projections onto a dense direction match a float64 reference from the node writes", arguments: 0..<3)
    func denseProjections(_ layer: Int) throws {
        let g = Self.denseDirection(seed: UInt64(layer + 1))
        func grow(_ t: Int) -> ArraySlice<Float> { g[(t * Self.D)..<((t + 1) * Self.D)] }
        // MLP neurons: (T, d_ff)
        let mlpNodes = (0..<Self.T).flatMap { t in (0..<Self.FF).map { [t, $0] } }
        let mlpWrites = try Self.writes(.mlpNeuron, layer, mlpNodes)
        let mlpWant = mlpNodes.indices.map { i in Self.dot(mlpWrites[(i * Self.D)..<((i + 1) * Self.D)], grow(mlpNodes[i][0])) }
        Self.expectNear(try Self.derive(.mlpWriteToFinalResidualGrad, layer, g), mlpWant, "mlp projections L\(layer)")
        // Attention: (T, T, H), 0 above the diagonal
        let pairs = (0..<Self.T).flatMap { q in (0..<Self.T).flatMap { k in (0..<Self.H).map { [q, k, $0] } } }
        let attnWrites = try Self.writes(.attentionHead, layer, pairs)
        let attnWant = pairs.indices.map { i in
            pairs[i][1] > pairs[i][0] ? 0 : Self.dot(attnWrites[(i * Self.D)..<((i + 1) * Self.D)], grow(pairs[i][0]))
        }
        let unflattened = try Self.derive(.unflattenedAttnWriteToFinalResidualGrad, layer, g)
        Self.expectNear(unflattened, attnWant, "attention projections L\(layer)")
        let lower = pairs.indices.filter { pairs[$0][1] <= pairs[$0][0] }
        #expect(try Self.derive(.attnWriteToFinalResidualGrad, layer, g) == lower.map { unflattened[$0] }, "flattened = lower triangle")
        let perToken = (0..<Self.T).flatMap { q in (0..<Self.H).map { h in (0...q).reduce(0.0) { $0 + attnWant[(q * Self.T + $1) * Self.H + h] } } }
        Self.expectNear(try Self.derive(.attnWriteToFinalResidualGradPerSequenceToken, layer, g), perToken, "per sequence token L\(layer)")
        // Latents: (T, n_latents)
        for (type, dst, n) in [(NodeType.mlpAutoencoderLatent, DerivedScalar.onlineMLPAutoencoderWriteToFinalResidualGrad, 80),
                               (.attentionAutoencoderLatent, .onlineAttentionAutoencoderWriteToFinalResidualGrad, 56)] {
            let nodes = (0..<Self.T).flatMap { t in (0..<n).map { [t, $0] } }
            let w = try Self.writes(type, layer, nodes)
            let want = nodes.indices.map { i in Self.dot(w[(i * Self.D)..<((i + 1) * Self.D)], grow(nodes[i][0])) }
            Self.expectNear(try Self.derive(dst, layer, g), want, "\(dst) L\(layer)")
        }
    }

    @Test("norms match float64 norms of the node writes", arguments: 0..<3)
    func norms(_ layer: Int) throws {
        let mlpNodes = (0..<Self.T).flatMap { t in (0..<Self.FF).map { [t, $0] } }
        let post = Fixture.family["activations.\(layer).mlp.post_act"].values
        let w = try Self.writes(.mlpNeuron, layer, mlpNodes)
        // TDB's MLP write norm is signed like the activation.
        let want = mlpNodes.indices.map { i in Self.dot(w[(i * Self.D)..<((i + 1) * Self.D)], w[(i * Self.D)..<((i + 1) * Self.D)]).squareRoot() * (post[i] < 0 ? -1 : 1) }
        Self.expectNear(try Self.derive(.mlpWriteNorm, layer, nil), want, "mlp norms L\(layer)")
        let pairs = (0..<Self.T).flatMap { q in (0..<Self.T).flatMap { k in (0..<Self.H).map { [q, k, $0] } } }
        let aw = try Self.writes(.attentionHead, layer, pairs)
        let attnWant = pairs.indices.map { i in pairs[i][1] > pairs[i][0] ? 0 : Self.dot(aw[(i * Self.D)..<((i + 1) * Self.D)], aw[(i * Self.D)..<((i + 1) * Self.D)]).squareRoot() }
        Self.expectNear(try Self.derive(.unflattenedAttnWriteNorm, layer, nil), attnWant, "attention norms L\(layer)")
    }

    @Test("summed over neurons, or keys and heads, the projections equal the layer's (minus the bias)", arguments: 0..<3)
    func sumsEqualLayer(_ layer: Int) throws {
        let g = Self.denseDirection(seed: 99)
        let f = Fixture.family
        for (nodesDst, layerDst, bias, width) in [(DerivedScalar.mlpWriteToFinalResidualGrad, DerivedScalar.mlpLayerWriteToFinalResidualGrad, "mlp", Self.FF),
                                                  (.unflattenedAttnWriteToFinalResidualGrad, .attnLayerWriteToFinalResidualGrad, "attn", Self.T * Self.H)] {
            let nodes = try Self.derive(nodesDst, layer, g), whole = try Self.derive(layerDst, layer, g)
            var biasDots: [Double] = []
            for t in 0..<Self.T {
                let sum = nodes[(t * width)..<((t + 1) * width)].reduce(0.0) { $0 + Double($1) }
                biasDots.append(Double(whole[t]) - sum)
            }
            // whole[t] - Σ nodes = bias · g[t], with the bias (the family fixture stores none of
            // its own) recovered at token 0 as resid.delta[0] minus the sum of its node writes.
            let deltas = f["activations.\(layer).resid.delta_\(bias)"].values
            let type: NodeType = bias == "mlp" ? .mlpNeuron : .attentionHead
            let all: [[Int]] = type == .mlpNeuron ? (0..<Self.FF).map { [0, $0] } : (0..<Self.H).map { [0, 0, $0] }
            let w = try Self.writes(type, layer, all)
            let biasVector = (0..<Self.D).map { j in Double(deltas[j]) - (0..<all.count).reduce(0.0) { $0 + Double(w[$1 * Self.D + j]) } }
            for t in 0..<Self.T {
                let want = Self.dot(ArraySlice(biasVector.map(Float.init)), g[(t * Self.D)..<((t + 1) * Self.D)])
                #expect(abs(biasDots[t] - want) <= 2e-5 * max(1, abs(Double(whole[t]))), "\(bias) L\(layer) t\(t): \(biasDots[t]) vs \(want)")
            }
        }
    }

    @Test("a unit direction e_j gives column j of the writes", arguments: [0, 17, 47])
    func unitDirection(_ j: Int) throws {
        var e = [Float](repeating: 0, count: Self.D)
        e[j] = 1
        let nodes = (0..<Self.T).flatMap { t in (0..<Self.FF).map { [t, $0] } }
        let w = try Self.writes(.mlpNeuron, 1, nodes)
        let got = try Self.derive(.mlpWriteToFinalResidualGrad, 1, e, shape: [Self.D])
        #expect(got.indices.allSatisfy { abs(got[$0] - w[$0 * Self.D + j]) <= 1e-6 * max(1, abs(w[$0 * Self.D + j])) })
        // The same through a (T, d_model) direction with the unit row at every token.
        let rows = (0..<Self.T).flatMap { _ in e }
        #expect(try Self.derive(.mlpWriteToFinalResidualGrad, 1, rows) == got)
        let pairs = (0..<Self.T).flatMap { q in (0..<Self.T).flatMap { k in (0..<Self.H).map { [q, k, $0] } } }
        let aw = try Self.writes(.attentionHead, 1, pairs)
        let attn = try Self.derive(.unflattenedAttnWriteToFinalResidualGrad, 1, e, shape: [Self.D])
        for i in pairs.indices {
            let want = pairs[i][1] > pairs[i][0] ? 0 : aw[i * Self.D + j]
            #expect(abs(attn[i] - want) <= 1e-6 * max(1, abs(want)), "\(pairs[i])")
        }
    }

    @Test("every derived scalar has the same bits on 1, 2, 3 and 8 threads", arguments: DerivedScalar.allCases.filter { $0.spec.name.description.hasPrefix("online_autoencoder") == false && $0.spec.edge == nil })
    func threads(_ dst: DerivedScalar) throws {
        let g = Self.denseDirection(seed: 7)
        let direction: [Float]? = dst.spec.quantity == .projection ? g : nil
        let one = try Self.derive(dst, 2, direction, threads: 1)
        for threads in [2, 3, 8] {
            #expect(try Self.derive(dst, 2, direction, threads: threads).map(\.bitPattern) == one.map(\.bitPattern))
        }
    }
}

@Suite("Token-space writes")
struct TokenWriteTests {
    static let setup = FamilyTests.setups["multi"]!

    /// Full token-space writes (n × n_vocab) and the top k of each, largest or smallest.
    static func run(_ type: NodeType, _ layer: Int, _ indices: [[Int]], k: Int, largest: Bool) throws -> ([Float], [Float], [Int64]) {
        let flat = indices.flatMap { $0.map(Int64.init) }
        var full = [Float](repeating: .nan, count: indices.count * 97)
        var values = [Float](repeating: .nan, count: indices.count * k), ids = [Int64](repeating: -1, count: indices.count * k)
        try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
            let set = try NodeSet(model: setup.model, nodeType: type, layer: layer, indices: idx, count: indices.count,
                                  indexCount: indices[0].count)
            try full.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try set.tokenWrites(setup.model, setup.store, into: o) }
            try values.withUnsafeMutableBufferPointer { (v) throws(NodeWriteError) in
                try ids.withUnsafeMutableBufferPointer { (i) throws(NodeWriteError) in
                    try set.tokenWritesTopK(setup.model, setup.store, k: k, largest: largest, values: v, ids: i)
                }
            }
        }
        return (full, values, ids)
    }

    @Test("top k is the k best entries of the full token-space write, in order, ties to the lower id",
          arguments: [(1, true), (20, true), (20, false), (97, true), (96, false)])
    func topK(_ k: Int, _ largest: Bool) throws {
        let nodes = [[6, 3], [0, 191], [-1, 17], [2, 5]]
        let (full, values, ids) = try Self.run(.mlpNeuron, 1, nodes, k: k, largest: largest)
        for i in nodes.indices {
            let row = Array(full[(i * 97)..<((i + 1) * 97)])
            let order = row.indices.sorted { a, b in row[a] != row[b] ? (largest ? row[a] > row[b] : row[a] < row[b]) : a < b }
            #expect(Array(ids[(i * k)..<((i + 1) * k)]) == order.prefix(k).map(Int64.init), "node \(i)")
            #expect(Array(values[(i * k)..<((i + 1) * k)]).map(\.bitPattern) == order.prefix(k).map { row[$0].bitPattern })
        }
    }

    @Test("each token-space write has mean zero over the vocabulary")
    func meanZero() throws {
        let (full, _, _) = try Self.run(.attentionHead, 2, [[6, 2, 1], [3, 3, 0]], k: 1, largest: true)
        for i in 0..<2 {
            let row = full[(i * 97)..<((i + 1) * 97)]
            let scale = row.map(abs).max()!
            #expect(abs(row.reduce(0.0) { $0 + Double($1) }) / 97 <= 1e-6 * Double(scale))
        }
    }
}

@Suite("Zeroed outputs")
struct ZeroedOutputTests {
    /// With outputZeroed, a zeroed buffer ends as the normal output, and entries that are
    /// zero are never written (a buffer of NaN keeps NaN exactly there).
    @Test("NW_OUT_ZEROED: same output, zero entries untouched", arguments: [
        DerivedScalar.unflattenedAttnWriteNorm, .unflattenedAttnWriteToFinalResidualGrad, .attnWriteToFinalResidualGrad,
        .mlpWriteToFinalResidualGrad, .onlineMLPAutoencoderWriteToFinalResidualGrad,
    ])
    func zeroed(_ dst: DerivedScalar) throws {
        let setup = FamilyTests.setups["multi"]!
        let g = dst.spec.quantity == .projection ? setup.direction : nil  // zero except the last row
        let normal = try DerivedScalarRun(dst, model: setup.model, store: setup.store, layer: 1, direction: g, threads: 2)
        let zeroed = try DerivedScalarRun(dst, model: setup.model, store: setup.store, layer: 1, direction: g, threads: 2,
                                          outputZeroed: true)
        var want = [Float](repeating: .nan, count: normal.count)
        var got = [Float](repeating: 0, count: normal.count)
        var marked = [Float](repeating: .nan, count: normal.count)
        try want.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try normal.derive(into: o.baseAddress!) }
        try got.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try zeroed.derive(into: o.baseAddress!) }
        try marked.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try zeroed.derive(into: o.baseAddress!) }
        #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
        let skipped = marked.indices.filter { marked[$0].isNaN }
        #expect(!skipped.isEmpty && skipped.allSatisfy { want[$0] == 0 })
    }
}

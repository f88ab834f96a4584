import CNodeWrite
import Foundation
@testable import NodeWriteCore
import Testing

/// Causality as a model fact: a causal model refuses attn.qk_probs with probability above the
/// diagonal at every attention entry point and never reads a key after the query; a model that
/// is not causal reads every key, and its write-family quantities are the sums of its node writes.
/// On the family fixture (T = 7, d_model 48, 3 heads × 16), at the core's API.
@Suite("Causality")
struct CausalityTests {
    static let (T, D, H, DH) = (7, 48, 3, 16)
    static let attentionDSTs: [DerivedScalar] = [
        .unflattenedAttnWriteNorm, .unflattenedAttnWriteToFinalResidualGrad, .attnWriteNorm,
        .attnWriteToFinalResidualGrad, .attnWriteNormPerSequenceToken, .attnWriteToFinalResidualGradPerSequenceToken,
    ]

    /// A pattern with mass above the diagonal: each (q, h) row of positive values over every key,
    /// summing to 1 (a bidirectional model's), from a fixed seed.
    static func fullPattern(seed: UInt64) -> [Float] {
        var state = seed
        var p = (0..<(T * T * H)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) + 0.05
        }
        for q in 0..<T {
            for h in 0..<H {
                let sum = (0..<T).reduce(Float(0)) { $0 + p[(q * T + $1) * H + h] }
                for k in 0..<T { p[(q * T + k) * H + h] /= sum }
            }
        }
        return p
    }

    static func view(_ setup: FamilyTests.Setup, _ values: [Float], _ shape: [Int]) -> TensorView {
        setup.view(Fixture.Tensor(shape: shape.map(Int64.init), values: values))
    }

    /// The fixture's store with `p` as attn.qk_probs at every layer.
    static func put(_ setup: FamilyTests.Setup, probs p: [Float]) throws {
        for layer in 0..<3 { try setup.store.put(.attnQKProbs, layer: layer, view(setup, p, [T, T, H])) }
    }

    static func derive(_ setup: FamilyTests.Setup, _ dst: DerivedScalar, _ layer: Int, _ g: [Float]?) throws(NodeWriteError) -> [Float] {
        let direction = g.map { view(setup, $0, [T, D]) }
        let run = try DerivedScalarRun(dst, model: setup.model, store: setup.store, layer: layer, direction: direction, threads: 2)
        var out = [Float](repeating: .nan, count: run.count)
        try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
        return out
    }

    static func writes(_ setup: FamilyTests.Setup, _ layer: Int, _ nodes: [[Int]]) throws(NodeWriteError) -> [Float] {
        let flat = nodes.flatMap { $0.map(Int64.init) }
        var out = [Float](repeating: .nan, count: nodes.count * D)
        try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
            let set = try NodeSet(model: setup.model, nodeType: .attentionHead, layer: layer, indices: idx, count: nodes.count, indexCount: 3)
            try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try set.writes(setup.store, into: o, tokenRows: nil) }
        }
        return out
    }

    static func tokenWrites(_ setup: FamilyTests.Setup, _ layer: Int, _ nodes: [[Int]]) throws(NodeWriteError) -> [Float] {
        let flat = nodes.flatMap { $0.map(Int64.init) }
        var out = [Float](repeating: .nan, count: nodes.count * 97)
        try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
            let set = try NodeSet(model: setup.model, nodeType: .attentionHead, layer: layer, indices: idx, count: nodes.count, indexCount: 3)
            try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try set.tokenWrites(setup.model, setup.store, into: o) }
        }
        return out
    }

    /// Every (q, k, h) in (query, key, head) order.
    static let allPairs = (0..<T).flatMap { q in (0..<T).flatMap { k in (0..<H).map { [q, k, $0] } } }

    static func expectCausalityMessage(_ error: NodeWriteError, _ what: String) {
        #expect(error.code == .invalidArgument, "\(what): \(error.message)")
        for part in ["above the diagonal", "layout=\"hqk\"", "query and key are swapped", "nw_model_set_causal(model, 0)",
                     "Model(..., causal=False)"] {
            #expect(error.message.contains(part), "\(what): the message lacks \(part): \(error.message)")
        }
    }

    @Test("a new model is causal, in the core and through the C ABI")
    func causalByDefault() throws {
        #expect(Model(dims: try ModelDims(nLayers: 1, dModel: 2, nHeads: 1, dHead: 1, dFF: 1)).causal)
        var dims = nw_model_dims(n_layers: 1, d_model: 2, n_heads: 1, d_head: 1, d_ff: 1)
        var m: OpaquePointer?
        #expect(nw_model_create(&dims, &m) == NW_OK.rawValue)
        defer { nw_model_destroy(m) }
        var causal: Int32 = -1
        #expect(nw_model_get_causal(m, &causal) == NW_OK.rawValue && causal == 1)
        #expect(nw_model_set_causal(m, 0) == NW_OK.rawValue)
        #expect(nw_model_get_causal(m, &causal) == NW_OK.rawValue && causal == 0)
        #expect(nw_model_set_causal(m, 2) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError.contains("causal = 2"))
        #expect(nw_model_get_causal(m, &causal) == NW_OK.rawValue && causal == 0)
    }

    @Test("probability above the diagonal is refused by every attention entry point, naming the causes and fixes")
    func massAboveRefused() throws {
        let setup = try FamilyTests.Setup("multi")
        try Self.put(setup, probs: Self.fullPattern(seed: 3))
        let g = FamilyPropertyTests.denseDirection(seed: 5)
        let node = NodeIndex(.attentionHead, layer: 1, indices: { var i = NodeIndices(repeating: 0); i[0] = 6; i[1] = 2; i[2] = 1; return i }())
        var calls: [(String, () throws(NodeWriteError) -> Void)] = [
            ("deriver derive", { () throws(NodeWriteError) in
                var out = [Float](repeating: 0, count: Self.T * Self.D)
                try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try NodeWriteDeriver(model: setup.model, node: node).derive(setup.store, into: o) }
            }),
            ("deriver derive_vector", { () throws(NodeWriteError) in
                var out = [Float](repeating: 0, count: Self.D)
                _ = try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try NodeWriteDeriver(model: setup.model, node: node).deriveVector(setup.store, into: o) }
            }),
            ("output shape", { () throws(NodeWriteError) in _ = try NodeWriteDeriver(model: setup.model, node: node).outputShape(setup.store) }),
            ("node write to a direction", { () throws(NodeWriteError) in
                var out = [Float](repeating: 0, count: Self.T)
                let d = Self.view(setup, g, [Self.T, Self.D])
                try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try NodeWriteDeriver(model: setup.model, node: node).projection(setup.store, direction: d, into: o) }
            }),
            ("node set", { () throws(NodeWriteError) in _ = try Self.writes(setup, 1, [[6, 2, 1], [0, 0, 0]]) }),
            ("token writes", { () throws(NodeWriteError) in _ = try Self.tokenWrites(setup, 1, [[6, 2, 1]]) }),
        ]
        for dst in Self.attentionDSTs {
            calls.append(("derive \(dst.name)", { () throws(NodeWriteError) in
                _ = try Self.derive(setup, dst, 1, dst.spec.quantity == .projection ? g : nil)
            }))
        }
        for (what, call) in calls {
            do {
                try call()
                Issue.record("\(what): mass above the diagonal was accepted")
            } catch {
                Self.expectCausalityMessage(error, what)
                #expect(error.message.contains("at layer 1"), "\(what): \(error.message)")
            }
        }
        // The same nodes of an MLP and the other activations are unaffected.
        _ = try Self.derive(setup, .mlpWriteNorm, 1, nil)
    }

    @Test("the C entry points refuse it too, with the message, writing nothing")
    func massAboveRefusedThroughC() throws {
        let setup = Setup(autoencoders: "multi")
        var p = Fixture.shared["activations.1.attn.qk_probs"].values
        p[(0 * 7 + 3) * 3 + 2] = 0.125  // (query 0, key 3, head 2)
        let b = setup.keep(Buffer(p, shape: [7, 7, 3], dtype: 0))
        #expect(b.withView { nw_store_put(setup.store, Int32(NW_ACT_ATTN_QK_PROBS.rawValue), 1, $0) } == NW_OK.rawValue)
        var node = nodeIndex(1, layer: 1, [5, 1, 0])
        var out = [Float](repeating: 7, count: 7 * 48)
        #expect(nw_node_write(setup.model, setup.store, &node, &out, out.count) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError.contains("probability 0.125 at (query 0, key 3, head 2)") && lastError.contains("nw_model_set_causal(model, 0)"))
        #expect(out.allSatisfy { $0 == 7 })
        var shape: [Int64] = [0, 0, 0]
        var ndim: Int32 = 0
        #expect(nw_derive(setup.model, setup.store, Int32(NW_DST_ATTN_WRITE_NORM_PER_SEQUENCE_TOKEN.rawValue), 1, nil, 0, &out, out.count,
                          &shape, &ndim) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(out.allSatisfy { $0 == 7 } && ndim == 0)
        // Declared not causal, the same store is read in full.
        #expect(nw_model_set_causal(setup.model, 0) == NW_OK.rawValue)
        #expect(nw_node_write(setup.model, setup.store, &node, &out, out.count) == NW_OK.rawValue)
    }

    /// A model with as many heads as tokens (T = n_heads = 3), where a (heads, q, k) pattern has the
    /// (T, T, n_heads) shape: read in the wrong layout, or with query and key swapped, it puts mass
    /// above the diagonal, and is refused; in the right layout it is accepted.
    @Test("a (heads, q, k) pattern read as (q, k, heads), and a q/k swap, are refused")
    func layoutMistakes() throws {
        let n = 3
        let model = Model(dims: try ModelDims(nLayers: 1, dModel: 4, nHeads: n, dHead: 2, dFF: 4))
        var keep: [Buffer] = []
        func view(_ values: [Float], _ shape: [Int], _ strides: [Int]? = nil) -> TensorView {
            let b = Buffer(values, shape: shape.map(Int64.init), dtype: 0)
            keep.append(b)
            return try! TensorView(base: UnsafeRawPointer(b.raw), dtype: .float32, shape: shape, strides: strides, name: "t")
        }
        try model.setWeight(.attnToResidual, layer: 0, view: view((0..<(n * 2 * 4)).map { Float($0 % 5) - 2 }, [n, 2, 4]), copy: false)
        // A causal pattern in (head, query, key) order: uniform over keys 0 ... q.
        let hqk = (0..<(n * n * n)).map { i -> Float in
            let q = i / n % n, k = i % n
            return k <= q ? 1 / Float(q + 1) : 0
        }
        let v = view((0..<(n * n * 2)).map { Float($0) / 4 }, [n, n, 2])
        func attempt(_ p: TensorView) throws(NodeWriteError) {
            var store = ActivationStore()
            try store.put(.attnQKProbs, layer: 0, p)
            try store.put(.attnValue, layer: 0, v)
            _ = try NodeSource(model: model, nodeType: .attentionHead, layer: 0).resolve(store)
        }
        // Right: (q, k, h) strides over the (h, q, k) memory.
        try attempt(view(hqk, [n, n, n], [n, 1, n * n]))
        // Wrong: the (h, q, k) memory read as (q, k, h).
        do { try attempt(view(hqk, [n, n, n])); Issue.record("a (heads, q, k) pattern read as (q, k, heads) was accepted") } catch {
            Self.expectCausalityMessage(error, "(h, q, k) as (q, k, h)")
        }
        // Query and key swapped: (k, q, h).
        do { try attempt(view(hqk, [n, n, n], [1, n, n * n])); Issue.record("a q/k swap was accepted") } catch {
            Self.expectCausalityMessage(error, "q/k swap")
        }
    }

    @Test("-0.0 above the diagonal is zero; NaN, ±inf and a subnormal are mass; in every dtype")
    func whatCountsAsMass() throws {
        let setup = try FamilyTests.Setup("multi")
        let clean = Fixture.family["activations.1.attn.qk_probs"].values
        func accepted(_ value: Float, dtype: DType) throws -> Bool {
            var p = clean
            p[(1 * 7 + 5) * 3 + 1] = value  // (query 1, key 5, head 1)
            let raw: Buffer = switch dtype {
            case .float32: Buffer(p, shape: [7, 7, 3], dtype: 0)
            case .float16: Buffer(p.map { Float16($0) }, shape: [7, 7, 3], dtype: 1)
            case .bfloat16: Buffer(p.map { bfloat16Bits($0) }, shape: [7, 7, 3], dtype: 2)
            case .float64: Buffer(p.map { Double($0) }, shape: [7, 7, 3], dtype: 3)
            }
            setup.keepAlive(raw)
            try setup.store.put(.attnQKProbs, layer: 1, try TensorView(base: UnsafeRawPointer(raw.raw), dtype: dtype, shape: [7, 7, 3], strides: nil, name: "p"))
            do {
                _ = try Self.derive(setup, .attnWriteNormPerSequenceToken, 1, nil)
                return true
            } catch {
                Self.expectCausalityMessage(error, "\(value) as \(dtype)")
                return false
            }
        }
        for dtype in [DType.float32, .float16, .bfloat16, .float64] {
            #expect(try accepted(0, dtype: dtype), "+0 \(dtype)")
            #expect(try accepted(-0.0, dtype: dtype), "-0 \(dtype)")
            for mass: Float in [.nan, .infinity, -.infinity, 0.5, -0.25] {
                #expect(try !accepted(mass, dtype: dtype), "\(mass) \(dtype)")
            }
        }
        #expect(try !accepted(.leastNonzeroMagnitude, dtype: .float32))
        #expect(try !accepted(Float(Float16.leastNonzeroMagnitude), dtype: .float16))
    }

    @Test("the scan runs once per store entry: a new put is scanned again")
    func oncePerEntry() throws {
        let setup = try FamilyTests.Setup("multi")
        let b = Buffer(Fixture.family["activations.2.attn.qk_probs"].values, shape: [7, 7, 3], dtype: 0)
        setup.keepAlive(b)
        let p = try TensorView(base: UnsafeRawPointer(b.raw), dtype: .float32, shape: [7, 7, 3], strides: nil, name: "p")
        try setup.store.put(.attnQKProbs, layer: 2, p)
        let before = try Self.derive(setup, .unflattenedAttnWriteNorm, 2, nil)
        // Mass written into the borrowed memory without a put: the entry was scanned already (the
        // store borrows memory its caller keeps unchanged), so calls cost no second scan.
        b.raw.storeBytes(of: Float(0.5), toByteOffset: ((0 * 7 + 6) * 3 + 0) * 4, as: Float.self)
        _ = try Self.derive(setup, .unflattenedAttnWriteNorm, 2, nil)
        // Put again: a new entry, a new scan, refused.
        try setup.store.put(.attnQKProbs, layer: 2, p)
        #expect(throws: NodeWriteError.self) { try Self.derive(setup, .unflattenedAttnWriteNorm, 2, nil) }
        b.raw.storeBytes(of: Float(0), toByteOffset: ((0 * 7 + 6) * 3 + 0) * 4, as: Float.self)
        try setup.store.put(.attnQKProbs, layer: 2, p)
        #expect(try Self.derive(setup, .unflattenedAttnWriteNorm, 2, nil).map(\.bitPattern) == before.map(\.bitPattern))
    }

    @Test("threads that read one fresh store at once all scan it alike: the same bits, or all refused")
    func concurrentFirstReads() throws {
        let setup = try FamilyTests.Setup("multi")
        let clean = Fixture.family["activations.1.attn.qk_probs"].values
        var dirty = clean
        dirty[(2 * 7 + 4) * 3 + 2] = 1e-30
        let want = try Self.derive(setup, .attnWriteNormPerSequenceToken, 1, nil)
        for round in 0..<16 {
            var fresh = setup.store
            let values = round % 2 == 0 ? clean : dirty
            try fresh.put(.attnQKProbs, layer: 1, Self.view(setup, values, [7, 7, 3]))
            let store = fresh
            final class Results: @unchecked Sendable {
                let lock = NSLock()
                var values = [[Float]?](repeating: nil, count: 8)
            }
            let results = Results()
            let model = setup.model
            DispatchQueue.concurrentPerform(iterations: 8) { i in
                let run = try? DerivedScalarRun(.attnWriteNormPerSequenceToken, model: model, store: store, layer: 1, direction: nil, threads: 1)
                guard let run else { return }
                var out = [Float](repeating: .nan, count: run.count)
                try? out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
                results.lock.lock()
                results.values[i] = out
                results.lock.unlock()
            }
            for (i, got) in results.values.enumerated() {
                if round % 2 == 0 {
                    #expect(got?.map(\.bitPattern) == want.map(\.bitPattern), "round \(round) thread \(i)")
                } else {
                    #expect(got == nil, "round \(round) thread \(i): mass above the diagonal accepted")
                }
            }
        }
    }

    /// v with +inf and NaN at key 4 (heads 1 and 0): every quantity of a query before 4 equals the
    /// clean one, bit for bit, and is finite; for a model that is not causal they reach it.
    @Test("a causal model reads no key after the query: inf and NaN at key 4 stay out of queries 0 ... 3",
          arguments: attentionDSTs)
    func laterKeyNotRead(_ dst: DerivedScalar) throws {
        let setup = try FamilyTests.Setup("multi")
        let g = dst.spec.quantity == .projection ? FamilyPropertyTests.denseDirection(seed: 11) : nil
        let clean = try Self.derive(setup, dst, 1, g)
        var v = Fixture.family["activations.1.attn.v"].values  // (7, 3, 16)
        v[(4 * 3 + 1) * 16 + 3] = .infinity
        v[(4 * 3 + 0) * 16 + 9] = .nan
        try setup.store.put(.attnValue, layer: 1, Self.view(setup, v, [7, 3, 16]))
        let planted = try Self.derive(setup, dst, 1, g)
        // The entries of queries 0 ... 3, in each layout.
        let early: [Int] = switch dst.spec.subject {
        case .nodes(_, .unflattened): Array(0..<(4 * Self.T * Self.H))
        case .nodes(_, .flattened): Array(0..<((4 * 5 / 2) * Self.H))
        default: Array(0..<(4 * Self.H))
        }
        for i in early {
            #expect(planted[i].bitPattern == clean[i].bitPattern && planted[i].isFinite, "\(dst.name)[\(i)]: \(planted[i]) vs \(clean[i])")
        }
        #expect(planted.contains { !$0.isFinite }, "\(dst.name): query 4 reads key 4, its value should not be finite")
        // Not causal: query 0 reads key 4 (the flattened layouts are refused, see below).
        guard case .nodes(_, let layout) = dst.spec.subject, layout != .flattened else { return }
        setup.model.causal = false
        let bidirectional = try Self.derive(setup, dst, 1, g)
        let reached = layout == .unflattened ? bidirectional[(4 * Self.H)..<(5 * Self.H)] : bidirectional[0..<Self.H]
        #expect(reached.contains { !$0.isFinite }, "\(dst.name): query 0 of a model that is not causal reads key 4")
    }

    @Test("a causal model reads no key after the query: node writes, node sets and token writes of queries 0 ... 3")
    func laterKeyNotReadByNodes() throws {
        let setup = try FamilyTests.Setup("multi")
        let early = Self.allPairs.filter { $0[0] < 4 }
        let cleanWrites = try Self.writes(setup, 1, early), cleanTokens = try Self.tokenWrites(setup, 1, early)
        var v = Fixture.family["activations.1.attn.v"].values
        v[(4 * 3 + 1) * 16 + 3] = .infinity
        v[(4 * 3 + 0) * 16 + 9] = .nan
        try setup.store.put(.attnValue, layer: 1, Self.view(setup, v, [7, 3, 16]))
        let writes = try Self.writes(setup, 1, early), tokens = try Self.tokenWrites(setup, 1, early)
        #expect(writes.map(\.bitPattern) == cleanWrites.map(\.bitPattern) && writes.allSatisfy(\.isFinite))
        #expect(tokens.map(\.bitPattern) == cleanTokens.map(\.bitPattern) && tokens.allSatisfy(\.isFinite))
        // (0, 4, h) writes exactly zero, one node at a time too.
        for h in 0..<Self.H {
            var idx = NodeIndices(repeating: 0)
            idx[0] = 0; idx[1] = 4; idx[2] = h
            var out = [Float](repeating: .nan, count: Self.D)
            _ = try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in
                try NodeWriteDeriver(model: setup.model, node: NodeIndex(.attentionHead, layer: 1, indices: idx)).deriveVector(setup.store, into: o)
            }
            #expect(out.allSatisfy { $0 == 0 }, "(0, 4, \(h))")
        }
        // Not causal: (0, 4, 1) reads v[4] (and p[0, 4] is 0 in the fixture: 0 · inf is NaN).
        setup.model.causal = false
        #expect(try !Self.writes(setup, 1, [[0, 4, 1]]).allSatisfy(\.isFinite))
    }

    /// For a model that is not causal, each attention quantity is made from the node writes of
    /// every key: within 1e-5 × max(1, max |reference|) of float64 sums of the node writes.
    @Test("not causal: every attention quantity equals the sums of its node writes over every key",
          arguments: [DerivedScalar.unflattenedAttnWriteNorm, .unflattenedAttnWriteToFinalResidualGrad,
                      .attnWriteNormPerSequenceToken, .attnWriteToFinalResidualGradPerSequenceToken])
    func notCausalEqualsNodeWrites(_ dst: DerivedScalar) throws {
        let setup = try FamilyTests.Setup("multi")
        setup.model.causal = false
        try Self.put(setup, probs: Self.fullPattern(seed: 17))
        let g = FamilyPropertyTests.denseDirection(seed: 23)
        for layer in 0..<3 {
            let w = try Self.writes(setup, layer, Self.allPairs)
            func write(_ q: Int, _ k: Int, _ h: Int) -> ArraySlice<Float> {
                let i = (q * Self.T + k) * Self.H + h
                return w[(i * Self.D)..<((i + 1) * Self.D)]
            }
            func grow(_ q: Int) -> ArraySlice<Float> { g[(q * Self.D)..<((q + 1) * Self.D)] }
            var want: [Double] = []
            switch dst {
            case .unflattenedAttnWriteNorm, .unflattenedAttnWriteToFinalResidualGrad:
                for pair in Self.allPairs {
                    let x = write(pair[0], pair[1], pair[2])
                    want.append(dst == .unflattenedAttnWriteNorm ? FamilyPropertyTests.dot(x, x).squareRoot() : FamilyPropertyTests.dot(x, grow(pair[0])))
                }
            default:
                for q in 0..<Self.T {
                    for h in 0..<Self.H {
                        var sum = [Double](repeating: 0, count: Self.D)
                        for k in 0..<Self.T { for (j, x) in write(q, k, h).enumerated() { sum[j] += Double(x) } }
                        if dst == .attnWriteNormPerSequenceToken {
                            want.append(sum.reduce(0) { $0 + $1 * $1 }.squareRoot())
                        } else {
                            want.append(zip(sum, grow(q)).reduce(0) { $0 + $1.0 * Double($1.1) })
                        }
                    }
                }
            }
            let got = try Self.derive(setup, dst, layer, dst.spec.quantity == .projection ? g : nil)
            FamilyPropertyTests.expectNear(got, want, "\(dst.name) L\(layer)")
            // Keys after the query carry mass here: the quantity is not the causal one.
            let above = Self.allPairs.indices.filter { Self.allPairs[$0][1] > Self.allPairs[$0][0] }
            if dst == .unflattenedAttnWriteNorm { #expect(above.contains { got[$0] != 0 }) }
        }
    }

    @Test("not causal: a node after its query is p · v @ W_O, and the flattened layouts are refused")
    func notCausalNodesAndFlattened() throws {
        let setup = try FamilyTests.Setup("multi")
        setup.model.causal = false
        let p = Self.fullPattern(seed: 29)
        try Self.put(setup, probs: p)
        let v = Fixture.family["activations.0.attn.v"].values, wo = Fixture.family["weights.0.attn.to_residual"].values
        let got = try Self.writes(setup, 0, [[1, 5, 2]])
        let scale = Double(p[(1 * 7 + 5) * 3 + 2])
        let want = (0..<Self.D).map { j in
            scale * (0..<Self.DH).reduce(0.0) { $0 + Double(v[(5 * 3 + 2) * 16 + $1]) * Double(wo[(2 * 16 + $1) * 48 + j]) }
        }
        FamilyPropertyTests.expectNear(got, want, "(1, 5, 2)")
        #expect(got.contains { $0 != 0 })
        for dst in [DerivedScalar.attnWriteNorm, .attnWriteToFinalResidualGrad] {
            do {
                _ = try Self.derive(setup, dst, 0, dst.spec.quantity == .projection ? FamilyPropertyTests.denseDirection(seed: 1) : nil)
                Issue.record("\(dst.name) was derived for a model that is not causal")
            } catch {
                #expect(error.code == .unsupported && error.message.contains("unflattened_\(dst.name)"), "\(error.message)")
            }
        }
    }
}

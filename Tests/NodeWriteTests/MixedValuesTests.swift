@testable import NodeWriteCore
import Testing

/// The per-sequence-token attention DSTs read attn.v_out (z[q, h] = Σ_k p[q, k, h] v[k, h],
/// TransformerLens's hook_z) when the store holds it. The two routes sum in different orders, so
/// they agree to float32 rounding (within 1e-5 × max(1, max |value|)), not necessarily bit for bit.
@Suite("Write family: attn.v_out")
struct MixedValuesTests {
    static let (T, D, H, dh) = (7, 48, 3, 16)

    /// z from the fixture's p and v, summed in float64.
    static func mixedValues(_ layer: Int) -> [Float] {
        let p = Fixture.family["activations.\(layer).attn.qk_probs"].values
        let v = Fixture.family["activations.\(layer).attn.v"].values
        var z = [Float](repeating: 0, count: T * H * dh)
        for q in 0..<T { for h in 0..<H { for e in 0..<dh {
            var s = 0.0
            for k in 0..<T { s += Double(p[(q * T + k) * H + h]) * Double(v[(k * H + h) * dh + e]) }
            z[(q * H + h) * dh + e] = Float(s)
        } } }
        return z
    }

    static func view(_ setup: FamilyTests.Setup, _ values: [Float], _ shape: [Int]) -> TensorView {
        setup.view(Fixture.Tensor(shape: shape.map(Int64.init), values: values))
    }

    /// The directions: TDB's fixture gradient (zero but its last row), a dense one with two zero
    /// rows, and one shared (d_model,) row.
    static func directions(_ setup: FamilyTests.Setup) -> [(String, TensorView)] {
        var dense = FamilyPropertyTests.denseDirection(seed: 9)
        for j in 0..<D { dense[2 * D + j] = 0; dense[5 * D + j] = 0 }
        return [("fixture gradient", setup.direction), ("dense", view(setup, dense, [T, D])),
                ("shared", view(setup, Array(FamilyPropertyTests.denseDirection(seed: 4).prefix(D)), [D]))]
    }

    static func derive(_ setup: FamilyTests.Setup, _ dst: DerivedScalar, _ layer: Int, _ g: TensorView?, threads: Int) throws -> [Float] {
        let run = try DerivedScalarRun(dst, model: setup.model, store: setup.store, layer: layer, direction: g, threads: threads)
        var out = [Float](repeating: .nan, count: run.count)
        try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
        return out
    }

    static func expectNear(_ got: [Float], _ want: [Float], _ what: String) {
        #expect(got.count == want.count, "\(what): count")
        let tolerance = 1e-5 * max(1, Double(want.map(abs).max() ?? 0))
        let worst = zip(got, want).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
        #expect(worst <= tolerance, "\(what): max |diff| \(worst) > \(tolerance)")
    }

    @Test("norms and projections from attn.v_out agree with the p · v route", arguments: 0..<3)
    func agree(_ layer: Int) throws {
        let setup = try FamilyTests.Setup("multi")
        let gs = Self.directions(setup)
        var before: [String: [Float]] = [:]
        for threads in [1, 2] {
            before["norm\(threads)"] = try Self.derive(setup, .attnWriteNormPerSequenceToken, layer, nil, threads: threads)
            for (name, g) in gs {
                before["\(name)\(threads)"] = try Self.derive(setup, .attnWriteToFinalResidualGradPerSequenceToken, layer, g, threads: threads)
            }
        }
        try setup.store.put(.attnVOut, layer: layer, Self.view(setup, Self.mixedValues(layer), [Self.T, Self.H, Self.dh]))
        for threads in [1, 2] {
            let norms = try Self.derive(setup, .attnWriteNormPerSequenceToken, layer, nil, threads: threads)
            Self.expectNear(norms, before["norm\(threads)"]!, "norms L\(layer), \(threads) threads")
            for (name, g) in gs {
                let got = try Self.derive(setup, .attnWriteToFinalResidualGradPerSequenceToken, layer, g, threads: threads)
                Self.expectNear(got, before["\(name)\(threads)"]!, "\(name) projections L\(layer), \(threads) threads")
                if name == "dense" {
                    for h in 0..<Self.H { #expect(got[2 * Self.H + h] == 0 && got[5 * Self.H + h] == 0, "zero rows of g give exact zeros") }
                }
            }
        }
    }

    @Test("attn.v_out is what is read: scaling it scales the outputs")
    func read() throws {
        let setup = try FamilyTests.Setup("multi")
        let g = Self.directions(setup)[1].1
        let base = try Self.derive(setup, .attnWriteToFinalResidualGradPerSequenceToken, 1, g, threads: 1)
        let norms = try Self.derive(setup, .attnWriteNormPerSequenceToken, 1, nil, threads: 1)
        try setup.store.put(.attnVOut, layer: 1, Self.view(setup, Self.mixedValues(1).map { 2 * $0 }, [Self.T, Self.H, Self.dh]))
        Self.expectNear(try Self.derive(setup, .attnWriteToFinalResidualGradPerSequenceToken, 1, g, threads: 1), base.map { 2 * $0 }, "2 z projections")
        Self.expectNear(try Self.derive(setup, .attnWriteNormPerSequenceToken, 1, nil, threads: 1), norms.map { 2 * $0 }, "2 z norms")
        // The other layouts still sum p · v: unchanged.
        let before = try Self.derive(FamilyTests.setups["multi"]!, .unflattenedAttnWriteNorm, 1, nil, threads: 1)
        #expect(try Self.derive(setup, .unflattenedAttnWriteNorm, 1, nil, threads: 1) == before)
    }

    @Test("attn.v_out of the wrong shape is refused, naming it")
    func wrongShape() throws {
        let setup = try FamilyTests.Setup("multi")
        let z = Array(Self.mixedValues(0).prefix((Self.T - 1) * Self.H * Self.dh))
        try setup.store.put(.attnVOut, layer: 0, Self.view(setup, z, [Self.T - 1, Self.H, Self.dh]))
        do {
            _ = try Self.derive(setup, .attnWriteNormPerSequenceToken, 0, nil, threads: 1)
            Issue.record("a (T - 1, H, d_head) attn.v_out was accepted")
        } catch let error as NodeWriteError {
            #expect("\(error)".contains("attn.v_out"), "\(error)")
        }
    }
}

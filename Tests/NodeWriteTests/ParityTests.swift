import CNodeWrite
import Testing

/// Every case of the original's parity fixtures, through the C ABI.
///
/// Tolerance: max |port − original| ≤ 1e-5 × max(1, max |original|). Both compute in
/// float32; the original's einsum may sum in another order, so bits can differ by a
/// few ulps of the largest term. Rows other than the node's token row are exact zeros.
@Suite("Parity with the original deriver")
struct ParityTests {
    static let setups = ["none": Setup(autoencoders: "none"), "single": Setup(autoencoders: "single"),
                         "multi": Setup(autoencoders: "multi")]
    static let T = Fixture.nTokens, D = Fixture.dModel

    @Test("fixture case", arguments: Fixture.shared.cases)
    func fixtureCase(_ c: Fixture.Case) throws {
        let setup = try #require(Self.setups[c.autoencoders])
        var node = nodeIndex(nodeType(c.node_type), layer: c.layer, c.tensor_indices)
        let sentinel = Float(bitPattern: 0x7fc0_dead)
        var out = [Float](repeating: sentinel, count: Self.T * Self.D)
        var deriver: OpaquePointer?
        var status = nw_node_write_deriver_create(setup.model, &node, &deriver)
        defer { nw_deriver_destroy(deriver) }
        if status == 0 { status = nw_deriver_derive(deriver, setup.store, &out, out.count) }

        if let error = c.error {
            // IndexError -> index out of range; AssertionError (no autoencoder) -> missing input.
            let want = error == "IndexError" ? NW_ERR_INDEX_OUT_OF_RANGE.rawValue : NW_ERR_MISSING_INPUT.rawValue
            #expect(status == want, "\(lastError)")
            #expect(!lastError.isEmpty)
            #expect(out.allSatisfy { $0.bitPattern == sentinel.bitPattern }, "output written on error")
            return
        }
        #expect(status == 0, "\(lastError)")
        let expected = Fixture.shared[try #require(c.expected)].values
        let row = Int(c.tensor_indices[0] < 0 ? c.tensor_indices[0] + Int64(Self.T) : c.tensor_indices[0])
        let scale = max(1, expected.map(abs).max()!)
        var maxDiff: Float = 0
        for t in 0..<Self.T {
            for j in 0..<Self.D {
                let (got, want) = (out[t * Self.D + j], expected[t * Self.D + j])
                if t != row { #expect(got == 0 && want == 0, "row \(t) must be exactly zero") }
                maxDiff = max(maxDiff, abs(got - want))
            }
        }
        #expect(maxDiff <= 1e-5 * scale, "max |diff| \(maxDiff)")

        // The vector alone and the one-shot call agree with the deriver bit for bit.
        var vector = [Float](repeating: 0, count: Self.D)
        var tokenRow: Int64 = -1
        #expect(nw_deriver_derive_vector(deriver, setup.store, &vector, vector.count, &tokenRow) == 0)
        #expect(tokenRow == Int64(row))
        #expect(vector == Array(out[row * Self.D..<(row + 1) * Self.D]))
        var oneShot = [Float](repeating: 1, count: Self.T * Self.D)
        #expect(nw_node_write(setup.model, setup.store, &node, &oneShot, oneShot.count) == 0)
        #expect(oneShot == out)
    }

    @Test("the deriver declares the original's raw activations")
    func requirements() throws {
        let setup = try #require(Self.setups["multi"])
        let want: [(String, [Int32])] = [
            ("mlp_neuron", [0]), ("attention_head", [1, 2]),
            ("mlp_autoencoder_latent", [4]), ("attention_autoencoder_latent", [5]),
        ]
        for (type, activations) in want {
            var node = nodeIndex(nodeType(type), layer: 2, type == "attention_head" ? [0, 0, 0] : [0, 0])
            var d: OpaquePointer?
            #expect(nw_node_write_deriver_create(setup.model, &node, &d) == 0)
            defer { nw_deriver_destroy(d) }
            var count = 0
            #expect(nw_deriver_requirements(d, nil, 0, &count) == NW_ERR_BUFFER_TOO_SMALL.rawValue)
            #expect(count == activations.count)
            var reqs = [nw_requirement](repeating: nw_requirement(), count: 4)
            #expect(nw_deriver_requirements(d, &reqs, reqs.count, &count) == 0)
            #expect(reqs.prefix(count).map(\.activation) == activations)
            #expect(reqs.prefix(count).allSatisfy { $0.layer == 2 })
        }
        // autoencoder_latent reads online_autoencoder_latent.
        let single = try #require(Self.setups["single"])
        var node = nodeIndex(2, layer: 0, [0, 0])
        var d: OpaquePointer?
        #expect(nw_node_write_deriver_create(single.model, &node, &d) == 0)
        var req = nw_requirement(), count = 0
        #expect(nw_deriver_requirements(d, &req, 1, &count) == 0 && req.activation == 3)
        nw_deriver_destroy(d)
    }
}

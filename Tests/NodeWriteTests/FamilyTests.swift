import Foundation
@testable import NodeWriteCore
import Testing

/// The write family against the original's outputs (tdb_family.*), at the core's API.
/// Tolerance: 1e-5 × max(1, max |original|), the fixture's stated agreement for a float32
/// port; exact zeros wherever the original has them.
@Suite("Write family")
struct FamilyTests {
    struct Manifest: Decodable {
        struct DST: Decodable { let dst: String; let autoencoders: String; let tensors: [String]?; let error: String? }
        struct Part: Decodable { let expected: String; let autoencoders: String }
        struct Node: Decodable {
            let id: String; let node_type: String; let layer: Int; let tensor_indices: [Int]
            let single_node_write_to_final_residual_grad: Part; let single_node_write: Part; let token_write: Part
        }
        let dsts: [DST]
        let nodes: [Node]
    }

    static let manifest = try! JSONDecoder().decode(
        Manifest.self, from: Data(contentsOf: Fixture.directory.appendingPathComponent("tdb_family.json")))

    /// The family's model under an autoencoder configuration: "multi", "single", "none", or
    /// "own" (the node type's own autoencoder only).
    final class Setup: @unchecked Sendable {
        let model: Model
        var store = ActivationStore()
        private var keep: [Buffer] = []

        init(_ autoencoders: String, own: NodeType? = nil) throws {
            let f = Fixture.family
            model = Model(dims: try ModelDims(nLayers: 3, dModel: 48, nHeads: 3, dHead: 16, dFF: 192))
            try model.setWeight(.unembedding, layer: Model.noLayer, view: view(f["weights.unembedding"]), copy: false)
            try model.setWeight(.layerNormGainFinal, layer: Model.noLayer, view: view(f["weights.final_ln.gain"]), copy: false)
            let mlpType: NodeType? = switch (autoencoders, own) {
            case ("multi", _), ("own", .mlpAutoencoderLatent?): .mlpAutoencoderLatent
            case ("single", _), ("own", .autoencoderLatent?): .autoencoderLatent
            default: nil
            }
            let attention = autoencoders == "multi" || (autoencoders == "own" && own == .attentionAutoencoderLatent)
            for l in 0..<3 {
                try model.setWeight(.mlpToResidual, layer: l, view: view(f["weights.\(l).mlp.to_residual"]), copy: false)
                try model.setWeight(.attnToResidual, layer: l, view: view(f["weights.\(l).attn.to_residual"]), copy: false)
                if let mlpType {
                    try model.setAutoencoder(mlpType, layer: l, input: .mlpPostAct,
                                             decoder: view(f["autoencoders.mlp.\(l).decoder_weight"]), copy: false)
                }
                if attention {
                    try model.setAutoencoder(.attentionAutoencoderLatent, layer: l, input: .residual,
                                             decoder: view(f["autoencoders.attention.\(l).decoder_weight"]), copy: false)
                }
                for location in ActivationLocation.allCases where f.has("activations.\(l).\(location.name)") {
                    try store.put(location, layer: l, view(f["activations.\(l).\(location.name)"]))
                }
            }
        }

        func view(_ t: Fixture.Tensor) -> TensorView {
            let b = Buffer(t.values, shape: t.shape, dtype: 0)
            keep.append(b)
            return try! TensorView(base: UnsafeRawPointer(b.raw), dtype: .float32, shape: t.shape.map(Int.init), strides: nil, name: "t")
        }

        var direction: TensorView { view(Fixture.family["activations.final_residual_grad"]) }

        /// Keeps `b` alive as long as this setup (for views a test makes of its own memory).
        func keepAlive(_ b: Buffer) { keep.append(b) }
    }

    static let setups: [String: Setup] = ["multi": try! Setup("multi"), "single": try! Setup("single")]

    /// Compares with the original: shape, then values within the tolerance, exact zeros.
    static func expectClose(_ got: [Float], _ expected: Fixture.Tensor, _ what: String) {
        #expect(got.count == expected.values.count, "\(what): \(got.count) values, expected \(expected.values.count)")
        guard got.count == expected.values.count else { return }
        let tolerance = 1e-5 * max(1, expected.values.map(abs).max() ?? 0)
        var worst: Float = 0, zerosKept = true
        for (g, e) in zip(got, expected.values) {
            worst = max(worst, abs(g - e))
            if e == 0 && g != 0 { zerosKept = false }
        }
        #expect(worst <= tolerance, "\(what): max |diff| \(worst) > \(tolerance)")
        #expect(zerosKept, "\(what): a value is not zero where the original's is")
    }

    static func derive(_ setup: Setup, _ dst: DerivedScalar, _ layer: Int, threads: Int = 1,
                       direction: TensorView? = nil) throws(NodeWriteError) -> ([Float], [Int]) {
        let g = dst.spec.quantity == .projection ? (direction ?? setup.direction) : nil
        let run = try DerivedScalarRun(dst, model: setup.model, store: setup.store, layer: layer, direction: g, threads: threads)
        var out = [Float](repeating: .nan, count: run.count)
        try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
        return (out, run.shape)
    }

    @Test("every derived scalar of every layer matches the original", arguments: manifest.dsts.filter { $0.error == nil }.map(\.dst) )
    func derivedScalar(_ name: String) throws {
        let entries = Self.manifest.dsts.filter { $0.dst == name && $0.error == nil }
        for entry in entries {
            let dst = try #require(DerivedScalar.named(name))
            for (layer, tensor) in (entry.tensors ?? []).enumerated() {
                for threads in [1, 2, 3] {
                    let (got, shape) = try Self.derive(Self.setups[entry.autoencoders]!, dst, layer, threads: threads)
                    #expect(shape.map(Int64.init) == Fixture.family[tensor].shape, "\(tensor) shape")
                    Self.expectClose(got, Fixture.family[tensor], "\(tensor) (\(threads) threads)")
                }
            }
        }
    }

    @Test("the generic autoencoder quantities fail with both autoencoders loaded, as in the original")
    func ambiguousAutoencoder() {
        for entry in Self.manifest.dsts where entry.error != nil {
            let dst = DerivedScalar.named(entry.dst)!
            #expect(throws: NodeWriteError.self) { try Self.derive(Self.setups["multi"]!, dst, 0) }
        }
    }

    @Test("single nodes: write, write onto the gradient, token-space write", arguments: manifest.nodes.map(\.id))
    func node(_ id: String) throws {
        let node = Self.manifest.nodes.first { $0.id == id }!
        let type = try #require(NodeType.named(node.node_type))
        var indices = NodeIndices(repeating: 0)
        for (i, v) in node.tensor_indices.enumerated() { indices[i] = v }
        let index = NodeIndex(type, layer: node.layer, indices: indices)
        func setup(_ config: String) throws -> Setup { config == "own" || config == "none" ? try Setup(config, own: type) : Self.setups[config]! }

        let s1 = try setup(node.single_node_write.autoencoders)
        let deriver = try NodeWriteDeriver(model: s1.model, node: index)
        var write = [Float](repeating: .nan, count: 7 * 48)
        try write.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try deriver.derive(s1.store, into: o) }
        Self.expectClose(write, Fixture.family[node.single_node_write.expected], "\(id) write")

        let s2 = try setup(node.single_node_write_to_final_residual_grad.autoencoders)
        let d2 = try NodeWriteDeriver(model: s2.model, node: index)
        var projection = [Float](repeating: .nan, count: 7)
        let g = s2.direction
        try projection.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try d2.projection(s2.store, direction: g, into: o) }
        Self.expectClose(projection, Fixture.family[node.single_node_write_to_final_residual_grad.expected], "\(id) projection")

        let s3 = try setup(node.token_write.autoencoders)
        let flat = node.tensor_indices.map(Int64.init)
        var tokens = [Float](repeating: .nan, count: 97)
        try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
            let set = try NodeSet(model: s3.model, nodeType: type, layer: node.layer, indices: idx, count: 1, indexCount: flat.count)
            try tokens.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try set.tokenWrites(s3.model, s3.store, into: o) }
        }
        Self.expectClose(tokens, Fixture.family[node.token_write.expected], "\(id) token write")
    }
}

import Foundation
import Testing
@testable import NodeWriteCore

/// Every edge DST on a random model at T = 70 (past the kernels' blocks of rows and tiles of
/// queries × keys, which the fixture's 7 tokens do not reach): the same bits on 1, 2 and 3
/// threads, and the same values into an output that holds zeros (NW_OUT_ZEROED).
@Suite struct EdgeThreadTests {
    static let T = 70, D = 48, H = 3, DH = 16, F = 192, NL = 40

    /// Two layers, an attention autoencoder on resid_delta_attn (or an MLP one on mlp_post_act),
    /// causal softmax probabilities and causal gradients, every other tensor uniform random.
    final class Setup: @unchecked Sendable {
        let model: Model
        var store = ActivationStore()
        private var buffers: [Buffer] = []
        private var seed: UInt64 = 0x9E37_79B9_7F4A_7C15

        init(mlpAutoencoder: Bool) throws {
            let T = EdgeThreadTests.T, D = EdgeThreadTests.D, H = EdgeThreadTests.H, DH = EdgeThreadTests.DH
            let F = EdgeThreadTests.F, NL = EdgeThreadTests.NL
            model = Model(dims: try ModelDims(nLayers: 2, dModel: D, nHeads: H, dHead: DH, dFF: F))
            let weights: [(WeightLocation, [Int])] = [
                (.mlpToResidual, [F, D]), (.attnToResidual, [H, DH, D]), (.layerNormGainPreAttn, [D]),
                (.layerNormBiasPreAttn, [D]), (.layerNormGainPreMLP, [D]), (.layerNormBiasPreMLP, [D]),
                (.attnToQuery, [H, D, DH]), (.attnToKey, [H, D, DH]), (.attnToValue, [H, D, DH]),
                (.attnQueryBias, [H, DH]), (.attnKeyBias, [H, DH]), (.attnValueBias, [H, DH]), (.attnOutBias, [D]),
                (.mlpToHidden, [D, F]), (.mlpInBias, [F]), (.mlpOutBias, [D]),
            ]
            let nIn = mlpAutoencoder ? F : D
            let type: NodeType = mlpAutoencoder ? .mlpAutoencoderLatent : .attentionAutoencoderLatent
            for l in 0..<2 {
                for (w, shape) in weights {
                    let offset: Float = w == .layerNormGainPreAttn || w == .layerNormGainPreMLP ? 1 : 0
                    try model.setWeight(w, layer: l, view: view(shape, scale: 0.3, offset: offset), copy: false)
                }
                try model.setAutoencoder(type, layer: l, input: mlpAutoencoder ? .mlpPostAct : .residual,
                                         decoder: view([NL, nIn], scale: 0.3), copy: false)
                try model.setAutoencoderEncoder(type, layer: l, encoder: view([NL, nIn], scale: 0.3),
                                                latentBias: view([NL], scale: 0.1), preBias: view([nIn], scale: 0.1), copy: false)
            }
            let latents: ActivationLocation = mlpAutoencoder ? .onlineMLPAutoencoderLatent : .onlineAttentionAutoencoderLatent
            for pass in [Pass.forward, .backward] {
                let scale: Float = pass == .forward ? 1 : 0.1
                try store.put(.residPostEmb, layer: Model.noLayer, view([T, D], scale: scale), pass: pass)
                for l in 0..<2 {
                    try store.put(.attnQKProbs, layer: l, probabilities(softmax: pass == .forward), pass: pass)
                    for (a, shape) in [(ActivationLocation.attnValue, [T, H, DH]), (.attnVOut, [T, H, DH]), (.mlpPostAct, [T, F]),
                                       (.residPostAttn, [T, D]), (.residPostMLP, [T, D]), (.residDeltaAttn, [T, D]),
                                       (.residDeltaMLP, [T, D])] {
                        try store.put(a, layer: l, view(shape, scale: scale), pass: pass)
                    }
                    // about half the latents live (z > 0)
                    try store.put(latents, layer: l, view([T, NL], scale: scale, offset: pass == .forward ? 0.1 : 0), pass: pass)
                }
            }
        }

        private func uniform() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(seed >> 40) / Float(1 << 24) - 0.5
        }

        private func view(_ shape: [Int], scale: Float, offset: Float = 0) -> TensorView {
            values(shape.reduce(1, *).countedMap { _ in offset + scale * uniform() }, shape)
        }

        private func values(_ v: [Float], _ shape: [Int]) -> TensorView {
            let b = Buffer(v, shape: shape.map(Int64.init), dtype: 0)
            buffers.append(b)
            return try! TensorView(base: UnsafeRawPointer(b.raw), dtype: .float32, shape: shape, strides: nil, name: "test")
        }

        /// (T, T, H): rows of a causal softmax (forward), or gradients zero above the diagonal.
        private func probabilities(softmax: Bool) -> TensorView {
            let T = EdgeThreadTests.T, H = EdgeThreadTests.H
            var p = [Float](repeating: 0, count: T * T * H)
            for q in 0..<T {
                for h in 0..<H {
                    var sum: Float = 0
                    for k in 0...q {
                        let x = softmax ? expf(4 * uniform()) : 0.1 * uniform()
                        p[(q * T + k) * H + h] = x
                        sum += x
                    }
                    if softmax { for k in 0...q { p[(q * T + k) * H + h] /= sum } }
                }
            }
            return values(p, [T, T, H])
        }

        func run(_ dst: DerivedScalar, layer: Int, node: EdgeNode?, threads: Int, zeroed: Bool = false) throws -> [Float] {
            let run = try EdgeRun(dst, model: model, store: store, layer: layer, node: node, detach: false, threads: threads,
                                  outputZeroed: zeroed)
            var out = [Float](repeating: zeroed ? 0 : .nan, count: run.count)
            try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
            return out
        }
    }

    static func node(_ type: NodeType, _ layer: Int, _ a: Int, _ b: Int, _ c: Int = 0, _ sub: Subnode = .none) -> EdgeNode {
        var i = NodeIndices(repeating: 0)
        i[0] = a; i[1] = b; i[2] = c
        return EdgeNode(NodeIndex(type, layer: layer, indices: i), subnode: sub)
    }

    /// (DST name, layer, node) of every edge DST, each node in the kernels' row blocks.
    static func calls(mlpAutoencoder: Bool) -> [(String, Int, EdgeNode?)] {
        let u = 30, latent: NodeType = mlpAutoencoder ? .mlpAutoencoderLatent : .attentionAutoencoderLatent
        let up = node(.mlpNeuron, 0, u, 17), head = node(.attentionHead, 0, u, 0, 1)
        let subs = [node(.attentionHead, 1, T - 1, u, 2, .query), node(.attentionHead, 1, T - 1, u, 2, .key),
                    node(.attentionHead, 1, T - 1, u, 2, .value), node(.mlpNeuron, 1, T - 5, 11), node(latent, 1, T - 1, 5)]
        var c: [(String, Int, EdgeNode?)] = []
        for d in ["attn_query_in_edge_attribution", "attn_key_in_edge_attribution", "attn_value_in_edge_attribution",
                  "mlp_in_edge_attribution", "online_autoencoder_in_edge_attribution"] {
            c += [(d, 1, up), (d, 1, head)]
        }
        for s in subs {
            c.append(("grad_of_single_subnode_attribution", 1, s))
            for d in ["attn_out_edge_attribution", "mlp_out_edge_attribution", "online_autoencoder_out_edge_attribution"] {
                c.append((d, 0, s))
            }
            c.append(("token_out_edge_attribution", Model.noLayer, s))
        }
        for d in ["mlp_act_times_grad", "unflattened_attn_act_times_grad", "attn_act_times_grad",
                  "attn_act_times_grad_per_sequence_token", "online_autoencoder_act_times_grad",
                  mlpAutoencoder ? "online_mlp_autoencoder_act_times_grad" : "online_attention_autoencoder_act_times_grad"] {
            c.append((d, 1, nil))
        }
        c.append(("token_attribution", Model.noLayer, nil))
        if !mlpAutoencoder {
            let trace = node(.attentionAutoencoderLatent, 1, EdgeNode.none, 5)
            for d in ["autoencoder_latent_grad_wrt_residual_input", "attn_write_to_latent", "attn_write_to_latent_summed_over_heads",
                      "flattened_attn_write_to_latent_summed_over_heads", "attn_write_to_latent_per_sequence_token"] {
                c.append((d, 1, trace))
            }
            c += [("flattened_attn_write_to_latent_summed_over_heads_batched", 1, nil),
                  ("attn_write_to_latent_per_sequence_token_batched", 1, nil)]
        }
        return c
    }

    @Test(arguments: [false, true])
    func sameBitsOnAnyThreadCount(mlpAutoencoder: Bool) throws {
        let setup = try Setup(mlpAutoencoder: mlpAutoencoder)
        var names = Set<String>(), allZero = 0
        let calls = Self.calls(mlpAutoencoder: mlpAutoencoder)
        for (name, layer, node) in calls {
            let dst = try #require(DerivedScalar.named(name))
            let one = try setup.run(dst, layer: layer, node: node, threads: 1)
            #expect(!one.contains { $0.isNaN }, "\(name): an output element not written")
            if !one.contains(where: { $0 != 0 }) { allZero += 1 }
            for threads in [2, 3] {
                let many = try setup.run(dst, layer: layer, node: node, threads: threads)
                #expect(one.map(\.bitPattern) == many.map(\.bitPattern), "\(name) \(String(describing: node)) on \(threads) threads")
            }
            let z = try setup.run(dst, layer: layer, node: node, threads: 2, zeroed: true)
            #expect(one == z, "\(name) \(String(describing: node)) into zeros")
            names.insert(name)
        }
        // every edge DST of the fixture but one act-times-grad of the other autoencoder (and, with
        // the MLP autoencoder, attention-to-latent) is called; few outputs are all zeros (a latent
        // not live at the subnode's token makes a zero gradient), so the comparisons see the bits
        #expect(names.count == (mlpAutoencoder ? 17 : 24), "\(names.count) DSTs")
        #expect(allZero * 8 <= calls.count, "\(allZero) of \(calls.count) outputs all zeros")
    }
}

private extension Int {
    func countedMap<T>(_ f: (Int) -> T) -> [T] { (0..<self).map(f) }
}

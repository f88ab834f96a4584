import CNodeWrite
import Foundation
@testable import NodeWriteCore
import Testing

/// One autoencoder per (latent node type, layer) slot: a second is refused (naming the slot, what
/// it holds and the fixes) and the slot keeps the first; removing empties it; derivers made before
/// keep the decoder they captured.
@Suite("Autoencoder slots")
struct AutoencoderSlotTests {
    /// The write vector of `node` through a deriver made now.
    static func write(_ setup: CoreSetup, _ type: NodeType, _ layer: Int, _ indices: [Int]) throws(NodeWriteError) -> [Float] {
        try setup.single(type, layer: layer, indices).0
    }

    @Test("a second autoencoder in an occupied slot is refused, and the slot keeps the first")
    func occupiedRefused() throws {
        let setup = try CoreSetup(autoencoders: "multi")
        let before = try Self.write(setup, .mlpAutoencoderLatent, 1, [3, 7])
        let other = setup.view((0..<(80 * 192)).map { Float($0 % 11) - 5 }, [80, 192])
        do {
            try setup.model.setAutoencoder(.mlpAutoencoderLatent, layer: 1, input: .mlpPostAct, decoder: other, copy: true)
            Issue.record("a second autoencoder was set in an occupied slot")
        } catch {
            #expect(error.code == .invalidArgument)
            for part in ["slot (mlp_autoencoder_latent, layer 1)", "input mlp_post_act", "decoder [80, 192]",
                         "nw_model_remove_autoencoder(model, 3, 1)", "remove_autoencoder(\"mlp_autoencoder_latent\", 1)",
                         "replace=True", "second model", "free at layer 1 (autoencoder_latent)"] {
                #expect(error.message.contains(part), "lacks \(part): \(error.message)")
            }
        }
        #expect(try Self.write(setup, .mlpAutoencoderLatent, 1, [3, 7]).map(\.bitPattern) == before.map(\.bitPattern))
        // Another input kind or ownership is no way around it.
        #expect(throws: NodeWriteError.self) {
            try setup.model.setAutoencoder(.attentionAutoencoderLatent, layer: 0, input: .attnZ,
                                           decoder: setup.view([Float](repeating: 1, count: 56 * 48), [56, 48]), copy: false)
        }
    }

    @Test("an encoder goes with its decoder: removing or replacing the autoencoder drops it")
    func encoderGoesWithItsDecoder() throws {
        let setup = try CoreSetup(autoencoders: "multi")
        let decoder = setup.view((0..<(80 * 192)).map { Float($0 % 13) / 8 - 0.75 }, [80, 192])
        let encoder = setup.view((0..<(80 * 192)).map { Float($0 % 7) / 4 - 0.5 }, [80, 192])
        try setup.model.setAutoencoderEncoder(.mlpAutoencoderLatent, layer: 1, encoder: encoder, latentBias: nil,
                                              preBias: nil, copy: true)
        #expect(setup.model.encoder(.mlpAutoencoderLatent, layer: 1) != nil)
        // Removed, then set again (a new decoder that may land at the old one's address): no encoder.
        for _ in 0..<20 {
            try setup.model.removeAutoencoder(.mlpAutoencoderLatent, layer: 1)
            #expect(setup.model.encoder(.mlpAutoencoderLatent, layer: 1) == nil)
            try setup.model.setAutoencoder(.mlpAutoencoderLatent, layer: 1, input: .mlpPostAct, decoder: decoder, copy: true)
            #expect(setup.model.encoder(.mlpAutoencoderLatent, layer: 1) == nil, "a stale encoder survived")
            try setup.model.setAutoencoderEncoder(.mlpAutoencoderLatent, layer: 1, encoder: encoder, latentBias: nil,
                                                  preBias: nil, copy: true)
        }
    }

    @Test("remove, then set: the new decoder is used; removing an empty slot is not an error")
    func removeThenSet() throws {
        let setup = try CoreSetup(autoencoders: "multi")
        let decoder = (0..<(80 * 192)).map { Float($0 % 13) / 8 - 0.75 }
        try setup.model.removeAutoencoder(.mlpAutoencoderLatent, layer: 1)
        #expect(throws: NodeWriteError.self) { try Self.write(setup, .mlpAutoencoderLatent, 1, [3, 7]) }
        try setup.model.removeAutoencoder(.mlpAutoencoderLatent, layer: 1)
        try setup.model.setAutoencoder(.mlpAutoencoderLatent, layer: 1, input: .mlpPostAct,
                                       decoder: setup.view(decoder, [80, 192]), copy: true)
        // The same as a model that had this decoder from the start.
        let fresh = try CoreSetup(autoencoders: "none")
        try fresh.model.setAutoencoder(.mlpAutoencoderLatent, layer: 1, input: .mlpPostAct,
                                       decoder: fresh.view(decoder, [80, 192]), copy: false)
        #expect(try Self.write(setup, .mlpAutoencoderLatent, 1, [3, 7]).map(\.bitPattern)
                == Self.write(fresh, .mlpAutoencoderLatent, 1, [3, 7]).map(\.bitPattern))
        for (type, layer) in [(NodeType.mlpNeuron, 0), (.attentionHead, 0)] {
            #expect(throws: NodeWriteError.self) { try setup.model.removeAutoencoder(type, layer: layer) }
        }
        for layer in [-1, 3, Int(Int32.max)] {
            do { try setup.model.removeAutoencoder(.autoencoderLatent, layer: layer); Issue.record("layer \(layer)") } catch {
                #expect(error.code == .indexOutOfRange)
            }
        }
    }

    @Test("a deriver made before keeps the decoder it captured, through removal and replacement")
    func deriverKeepsDecoder() throws {
        let setup = try CoreSetup(autoencoders: "multi")
        var idx = NodeIndices(repeating: 0)
        idx[0] = 5; idx[1] = 40
        let deriver = try NodeWriteDeriver(model: setup.model, node: NodeIndex(.mlpAutoencoderLatent, layer: 2, indices: idx))
        func derive() throws(NodeWriteError) -> [Float] {
            var out = [Float](repeating: .nan, count: 48)
            _ = try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try deriver.deriveVector(setup.store, into: o) }
            return out
        }
        let before = try derive()
        try setup.model.removeAutoencoder(.mlpAutoencoderLatent, layer: 2)
        #expect(try derive().map(\.bitPattern) == before.map(\.bitPattern))
        try setup.model.setAutoencoder(.mlpAutoencoderLatent, layer: 2, input: .mlpPostAct,
                                       decoder: setup.view([Float](repeating: 0.5, count: 80 * 192), [80, 192]), copy: true)
        #expect(try derive().map(\.bitPattern) == before.map(\.bitPattern))
        #expect(try Self.write(setup, .mlpAutoencoderLatent, 2, [5, 40]).map(\.bitPattern) != before.map(\.bitPattern))
    }

    @Test("through the C ABI: refused with the message, removed, set; SAELens loads refuse an occupied slot too")
    func throughC() throws {
        let checkpoints = Fixture.directory.appendingPathComponent("checkpoints").path
        var model: OpaquePointer?
        #expect(nw_model_load_safetensors("\(checkpoints)/tl/model.safetensors", &model) == NW_OK.rawValue)
        defer { nw_model_destroy(model) }
        let latent = Int32(NW_NODE_AUTOENCODER_LATENT.rawValue)
        #expect(nw_model_load_autoencoder_safetensors(model, "\(checkpoints)/sae_resid", latent, 1) == NW_OK.rawValue)
        // The same SAE again, or another one, into the same slot.
        #expect(nw_model_load_autoencoder_safetensors(model, "\(checkpoints)/sae_resid", latent, 1) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(lastError.contains("slot (autoencoder_latent, layer 1) holds an autoencoder already (input residual, decoder [48, 32])"))
        #expect(lastError.contains("mlp_autoencoder_latent, attention_autoencoder_latent"), "\(lastError)")
        let b = Buffer([Float](repeating: 1, count: 5 * 32), shape: [5, 32], dtype: 0)
        #expect(b.withView { nw_model_set_autoencoder(model, latent, 1, Int32(NW_AE_INPUT_RESIDUAL.rawValue), $0, Int32(NW_COPY.rawValue)) }
                == NW_ERR_INVALID_ARGUMENT.rawValue)
        // The slot still holds the SAE: latent 47 exists (the 5-latent decoder has no latent 47).
        var node = nodeIndex(latent, layer: 1, [0, 47])
        var deriver: OpaquePointer?
        #expect(nw_node_write_deriver_create(model, &node, &deriver) == NW_OK.rawValue)
        nw_deriver_destroy(deriver)
        #expect(nw_model_remove_autoencoder(model, latent, 1) == NW_OK.rawValue)
        #expect(nw_node_write_deriver_create(model, &node, &deriver) == NW_ERR_MISSING_INPUT.rawValue)
        #expect(b.withView { nw_model_set_autoencoder(model, latent, 1, Int32(NW_AE_INPUT_RESIDUAL.rawValue), $0, Int32(NW_COPY.rawValue)) }
                == NW_OK.rawValue)
        #expect(nw_node_write_deriver_create(model, &node, &deriver) == NW_ERR_INDEX_OUT_OF_RANGE.rawValue)
        #expect(nw_model_remove_autoencoder(nil, latent, 1) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_remove_autoencoder(model, Int32(NW_NODE_MLP_NEURON.rawValue), 1) == NW_ERR_INVALID_ARGUMENT.rawValue)
        #expect(nw_model_remove_autoencoder(model, latent, 2) == NW_ERR_INDEX_OUT_OF_RANGE.rawValue)
    }
}

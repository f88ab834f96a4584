import CNodeWrite
import Foundation
@testable import NodeWriteCore
import Testing

/// Checkpoint files that change on disk: a loaded model holds its tensors in memory of its own,
/// so truncating, rewriting or replacing the file never changes its numbers nor crashes it (the
/// mapped model of earlier versions read zeros after a truncation, or died of SIGBUS, and read the
/// new weights after a rewrite); a file that changes while it is being loaded is refused with
/// NW_ERR_STALE_INPUT. On the bundled TransformerLens fixture (2 layers, d_model 32, 4 heads × 8,
/// d_ff 64, 50 tokens of vocabulary) and its SAE (blocks.1.hook_resid_post, 48 latents).
@Suite("Checkpoints that change on disk", .serialized)
struct CheckpointChangeTests {
    static let checkpoints = Fixture.directory.appendingPathComponent("checkpoints").path
    static let (T, D, H, DH, FF, V) = (5, 32, 4, 8, 64, 50)

    /// Activations for the fixture model (causal attention), kept alive by the test.
    final class Activations: @unchecked Sendable {
        static func values(_ n: Int, _ f: (Int) -> Float) -> [Float] { (0..<n).map(f) }
        let post = Buffer(values(5 * 64) { Float($0 % 9) / 4 - 1 }, shape: [5, 64], dtype: 0)
        let probs = Buffer(values(5 * 5 * 4) { i in i / 4 % 5 <= i / 20 ? 1 / Float(i / 20 + 1) : 0 }, shape: [5, 5, 4], dtype: 0)
        let v = Buffer(values(5 * 4 * 8) { Float($0 % 7) / 3 - 1 }, shape: [5, 4, 8], dtype: 0)
        let latents = Buffer(values(5 * 48) { Float($0 % 5) / 2 }, shape: [5, 48], dtype: 0)

        /// A new store over these activations at both layers.
        func store() -> OpaquePointer {
            var s: OpaquePointer?
            nw_store_create(&s)
            for layer in Int32(0)..<2 {
                _ = post.withView { nw_store_put(s, Int32(NW_ACT_MLP_POST_ACT.rawValue), layer, $0) }
                _ = probs.withView { nw_store_put(s, Int32(NW_ACT_ATTN_QK_PROBS.rawValue), layer, $0) }
                _ = v.withView { nw_store_put(s, Int32(NW_ACT_ATTN_VALUE.rawValue), layer, $0) }
                _ = latents.withView { nw_store_put(s, Int32(NW_ACT_ONLINE_AUTOENCODER_LATENT.rawValue), layer, $0) }
            }
            return s!
        }
    }

    /// Everything the model computes that reads its weights: an MLP, an attention and a latent node
    /// write, the write norms of attention (through the Gram cache), and token writes. nil on an error.
    static func outputs(_ model: OpaquePointer, _ store: OpaquePointer) -> [Float]? {
        var all: [Float] = []
        var out = [Float](repeating: 0, count: 5 * 5 * 4 * 2 + 64)
        for (type, layer, indices) in [(NW_NODE_MLP_NEURON, Int32(1), [Int64](arrayLiteral: 4, 17)),
                                       (NW_NODE_ATTENTION_HEAD, 0, [3, 1, 2]), (NW_NODE_AUTOENCODER_LATENT, 1, [2, 40])] {
            var node = nodeIndex(Int32(type.rawValue), layer: layer, indices)
            guard nw_node_write(model, store, &node, &out, out.count) == NW_OK.rawValue else { return nil }
            all += out[0..<(T * D)]
        }
        var shape: [Int64] = [0, 0, 0]
        var ndim: Int32 = 0
        guard nw_derive(model, store, Int32(NW_DST_UNFLATTENED_ATTN_WRITE_NORM.rawValue), 1, nil, 0, &out, out.count, &shape,
                        &ndim) == NW_OK.rawValue else { return nil }
        all += out[0..<(T * T * H)]
        let ix: [Int64] = [4, 3, 1, 0, 0, 0]
        guard nw_token_writes(model, store, Int32(NW_NODE_ATTENTION_HEAD.rawValue), 1, ix, 2, 3, &out, out.count) == NW_OK.rawValue
        else { return nil }
        all += out[0..<(2 * V)]
        return all
    }

    /// A model loaded from `dir` (model.safetensors and the SAE in sae/), or nil with the status.
    static func load(_ dir: URL) -> (OpaquePointer?, Int32) {
        var model: OpaquePointer?
        let st = nw_model_load_safetensors(dir.appendingPathComponent("model.safetensors").path, &model)
        guard st == NW_OK.rawValue else { return (nil, st) }
        let ae = nw_model_load_autoencoder_safetensors(model, dir.appendingPathComponent("sae").path,
                                                        Int32(NW_NODE_AUTOENCODER_LATENT.rawValue), 1)
        guard ae == NW_OK.rawValue else { nw_model_destroy(model); return (nil, ae) }
        return (model, NW_OK.rawValue)
    }

    /// A temporary directory holding copies of the fixture model and SAE.
    static func copies() throws -> URL {
        let dir = tempDirectory()
        let fm = FileManager.default
        try fm.copyItem(atPath: "\(checkpoints)/tl/model.safetensors", toPath: dir.appendingPathComponent("model.safetensors").path)
        try fm.createDirectory(at: dir.appendingPathComponent("sae"), withIntermediateDirectories: false)
        for name in ["cfg.json", "sae_weights.safetensors"] {
            try fm.copyItem(atPath: "\(checkpoints)/sae_resid/\(name)", toPath: dir.appendingPathComponent("sae/\(name)").path)
        }
        return dir
    }

    /// `bytes` written over the file at `path` in place (no truncation, same inode).
    static func rewriteInPlace(_ path: String, _ bytes: [UInt8]) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seek(toOffset: 0)
        try h.write(contentsOf: Data(bytes))
        try h.close()
    }

    static func truncate(_ path: String, to size: UInt64) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: size)
        try h.close()
    }

    /// The file with every data byte after the header changed (other weights, same layout and size).
    static func otherWeights(_ original: [UInt8]) -> [UInt8] {
        let n = original.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        var out = original
        for i in (8 + n)..<out.count where i % 4 == 1 { out[i] ^= 0x5a }
        return out
    }

    @Test("a loaded model keeps its numbers while its files are truncated, rewritten in place and replaced, used by four threads")
    func loadedModelUnchanged() throws {
        let dir = try Self.copies()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (loaded, status) = Self.load(dir)
        let model = try #require(loaded, "load: \(status) \(lastError)")
        defer { nw_model_destroy(model) }
        let acts = Activations()
        let reference = try #require(Self.outputs(model, acts.store()))
        final class Tally: @unchecked Sendable {
            let lock = NSLock()
            var calls = 0, wrong = 0
            var stop = false
            var stopped: Bool { lock.lock(); defer { lock.unlock() }; return stop }
        }
        let tally = Tally()
        let group = DispatchGroup()
        struct Shared: @unchecked Sendable { let model: OpaquePointer }  // a model may be used by any number of threads
        let shared = Shared(model: model)
        for _ in 0..<4 {
            DispatchQueue.global().async(group: group) {
                let store = acts.store()
                defer { nw_store_destroy(store) }
                repeat {
                    let got = Self.outputs(shared.model, store)
                    tally.lock.lock()
                    tally.calls += 1
                    if got?.map(\.bitPattern) != reference.map(\.bitPattern) { tally.wrong += 1 }
                    tally.lock.unlock()
                } while !tally.stopped
            }
        }
        let path = dir.appendingPathComponent("model.safetensors").path, sae = dir.appendingPathComponent("sae/sae_weights.safetensors").path
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let saeOriginal = try [UInt8](Data(contentsOf: URL(fileURLWithPath: sae)))
        func pause() { usleep(20_000) }
        // Truncated (as re-saving does first), to nothing and to half.
        try Self.truncate(path, to: 0); try Self.truncate(sae, to: 0); pause()
        try Self.rewriteInPlace(path, Array(original.prefix(original.count / 2))); pause()
        // Rewritten in place with other weights.
        try Self.rewriteInPlace(path, Self.otherWeights(original)); try Self.rewriteInPlace(sae, Self.otherWeights(saeOriginal)); pause()
        // Replaced by rename with yet other weights, then removed.
        let replacement = dir.appendingPathComponent("next.safetensors").path
        try Data(original.reversed()).write(to: URL(fileURLWithPath: replacement))
        #expect(rename(replacement, path) == 0); pause()
        try FileManager.default.removeItem(atPath: path); try FileManager.default.removeItem(atPath: sae); pause()
        tally.lock.lock(); tally.stop = true; tally.lock.unlock()
        group.wait()
        #expect(tally.wrong == 0, "\(tally.wrong) of \(tally.calls) calls gave other numbers than before the files changed")
        #expect(tally.calls >= 4)
        #expect(Self.outputs(model, acts.store())?.map(\.bitPattern) == reference.map(\.bitPattern))
    }

    /// The file changes between its header and its tensors being read: refused, never a mix.
    @Test("a file truncated, rewritten in place or extended while it is loaded is refused with NW_ERR_STALE_INPUT")
    func changedDuringLoad() throws {
        let dir = try Self.copies()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let changes: [(String, String, () throws -> Void)] = [
            ("truncated", "truncated while it was read", { try Self.truncate(path, to: UInt64(original.count / 2)) }),
            ("rewritten in place", "modification time changed", { try Self.rewriteInPlace(path, Self.otherWeights(original)) }),
            ("extended", "its size went from", {
                let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try h.seekToEnd()
                try h.write(contentsOf: Data([1, 2, 3]))
                try h.close()
            }),
        ]
        for (what, says, change) in changes {
            try Data(original).write(to: URL(fileURLWithPath: path))
            let file = try SafetensorsFile(path: path)  // opened, its header read
            usleep(20_000)  // past one timer tick: the change gets another timestamp on any kernel
            try change()
            do {
                _ = try Model.load(file, configDirectory: nil)
                Issue.record("\(what): the load succeeded")
            } catch {
                #expect(error.code == .staleInput && error.message.contains(says), "\(what): \(error.message)")
            }
        }
        // Replaced by rename after it was opened: the load reads the file it opened, all of it.
        try Data(original).write(to: URL(fileURLWithPath: path))
        let file = try SafetensorsFile(path: path)
        let next = dir.appendingPathComponent("next.safetensors").path
        try Data(Self.otherWeights(original)).write(to: URL(fileURLWithPath: next))
        #expect(rename(next, path) == 0)
        let model = try Model.load(file, configDirectory: nil)
        let expected = try Model.load(safetensorsAt: "\(Self.checkpoints)/tl/model.safetensors")
        for layer in 0..<2 {
            let a = try #require(model.weight(.mlpToResidual, layer: layer)?.view), b = try #require(expected.weight(.mlpToResidual, layer: layer)?.view)
            #expect((0..<(Self.FF * Self.D)).allSatisfy { a.value(at: $0) == b.value(at: $0) })
        }
        // Through the C ABI the status is NW_ERR_STALE_INPUT, and an SAE's slot stays empty.
        #expect(String(cString: nw_status_string(NW_ERR_STALE_INPUT.rawValue)) == "NW_ERR_STALE_INPUT")
    }

    /// A writer truncates the files and writes them back (the same bytes) while they are loaded again
    /// and again: every load is a model with the reference numbers, or refused (NW_ERR_STALE_INPUT, or
    /// NW_ERR_INVALID_ARGUMENT for a header read while it was cut short); never a crash.
    @Test("loads racing a writer that truncates and rewrites the files succeed with the right numbers or are refused")
    func loadsRacingAWriter() throws {
        let dir = try Self.copies()
        defer { try? FileManager.default.removeItem(at: dir) }
        let acts = Activations()
        let (first, _) = Self.load(dir)
        let model0 = try #require(first)
        let reference = try #require(Self.outputs(model0, acts.store()))
        nw_model_destroy(model0)
        let path = dir.appendingPathComponent("model.safetensors").path, sae = dir.appendingPathComponent("sae/sae_weights.safetensors").path
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let saeOriginal = try [UInt8](Data(contentsOf: URL(fileURLWithPath: sae)))
        final class Flag: @unchecked Sendable {
            let lock = NSLock()
            var value = false
            func get() -> Bool { lock.lock(); defer { lock.unlock() }; return value }
            func set() { lock.lock(); value = true; lock.unlock() }
        }
        let done = Flag()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            var i = 0
            while !done.get() {
                try? Self.truncate(i % 2 == 0 ? path : sae, to: UInt64(i % 3 == 0 ? 0 : 100 + i % 1000))
                try? Self.rewriteInPlace(i % 2 == 0 ? path : sae, i % 2 == 0 ? original : saeOriginal)
                usleep(UInt32(200 * (i % 8)))  // stable windows of varying length, for loads to succeed in
                i += 1
            }
        }
        var outcomes: [Int32: Int] = [:]
        var wrong = 0
        for _ in 0..<200 {
            let (model, status) = Self.load(dir)
            outcomes[status, default: 0] += 1
            if let model {
                if Self.outputs(model, acts.store())?.map(\.bitPattern) != reference.map(\.bitPattern) { wrong += 1 }
                nw_model_destroy(model)
            }
        }
        done.set()
        group.wait()
        print("loads racing a writer: outcomes by status \(outcomes.sorted { $0.key > $1.key })")
        #expect(wrong == 0, "\(wrong) loads gave other numbers; outcomes \(outcomes)")
        let allowed: Set<Int32> = [NW_OK.rawValue, NW_ERR_STALE_INPUT.rawValue, NW_ERR_INVALID_ARGUMENT.rawValue, NW_ERR_SHAPE_MISMATCH.rawValue,
                                   NW_ERR_MISSING_INPUT.rawValue]
        #expect(Set(outcomes.keys).isSubset(of: allowed), "outcomes \(outcomes)")
    }
}

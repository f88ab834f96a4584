import Foundation
@testable import NodeWriteCore

/// The edge-attribution fixtures (tdb_edges.*): TDB's outputs for in-edges, out-edges,
/// act-times-grad and attention-to-latent, and the model and stores they came from, as the
/// core's own types.
enum EdgeFixture {
    struct Case: @unchecked Sendable, CustomStringConvertible {
        let raw: [String: Any]
        var id: String { raw["id"] as! String }
        var dst: String { raw["dst"] as! String }
        var group: String { raw["group"] as! String }
        var store: String { raw["store"] as! String }
        var detach: Bool { raw["detach"] as? Bool ?? false }
        var error: String? { raw["error"] as? String }
        var expected: [String: String] { raw["expected"] as? [String: String] ?? [:] }
        var shape: [Int] { raw["shape"] as? [Int] ?? [] }
        var description: String { "\(id) \(dst) [\(store)]" }

        /// The node argument: the case's node, or its trace latent (token None).
        var node: EdgeNode? {
            guard let n = (raw["node"] ?? raw["trace_latent"]) as? [String: Any] else { return nil }
            let type = NodeType.named(n["node_type"] as! String)!
            let idx = (n["tensor_indices"] as! [Any]).map { ($0 as? Int) ?? EdgeNode.none }
            var indices = NodeIndices(repeating: 0)
            for (i, v) in idx.enumerated() { indices[i] = v }
            let sub: Subnode = switch n["subnode"] as? String {
            case "q": .query
            case "k": .key
            case "v": .value
            default: .none
            }
            return EdgeNode(NodeIndex(type, layer: n["layer"] as! Int, indices: indices), subnode: sub)
        }

        /// The layers the case is asked at (Model.noLayer for "none").
        var layers: [Int] {
            if !expected.isEmpty { return expected.keys.map { $0 == "none" ? Model.noLayer : Int($0)! }.sorted() }
            if let l = raw["layer_indices"] as? [Int] { return l }
            if ["token_out_edge_attribution", "token_attribution"].contains(dst) { return [Model.noLayer] }
            if let n = node, dst == "grad_of_single_subnode_attribution" { return [n.node.layer] }
            return [0, 1, 2]
        }
    }

    nonisolated(unsafe) static let manifest: [String: Any] = {
        let url = Fixture.directory.appendingPathComponent("tdb_edges.json")
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    static let cases: [Case] = (manifest["cases"] as! [[String: Any]]).map(Case.init)

    /// A setup per store, made once.
    nonisolated(unsafe) private static var setups: [String: EdgeSetup] = [:]
    private static let lock = NSLock()

    static func setup(_ store: String) -> EdgeSetup {
        lock.lock(); defer { lock.unlock() }
        if let s = setups[store] { return s }
        let s = try! EdgeSetup(store: store)
        setups[store] = s
        return s
    }
}

/// The fixture's model (read side, output weights, the store's autoencoders with encoders)
/// and one store's forward and backward activations.
final class EdgeSetup: @unchecked Sendable {
    let model: Model
    var store = ActivationStore()
    private var buffers: [Buffer] = []

    init(store name: String) throws {
        model = Model(dims: try ModelDims(nLayers: 3, dModel: 48, nHeads: 3, dHead: 16, dFF: 192))
        let f = Fixture.edges
        let weights: [(WeightLocation, String)] = [
            (.mlpToResidual, "mlp.to_residual"), (.attnToResidual, "attn.to_residual"),
            (.layerNormGainPreAttn, "ln_1.gain"), (.layerNormBiasPreAttn, "ln_1.bias"),
            (.layerNormGainPreMLP, "ln_2.gain"), (.layerNormBiasPreMLP, "ln_2.bias"),
            (.attnToQuery, "attn.to_query"), (.attnToKey, "attn.to_key"), (.attnToValue, "attn.to_value"),
            (.attnQueryBias, "attn.query_bias"), (.attnKeyBias, "attn.key_bias"), (.attnValueBias, "attn.value_bias"),
            (.attnOutBias, "attn.out_bias"), (.mlpToHidden, "mlp.to_hidden"), (.mlpInBias, "mlp.in_bias"),
            (.mlpOutBias, "mlp.out_bias"),
        ]
        for l in 0..<3 {
            for (w, n) in weights { try model.setWeight(w, layer: l, view: view(f["weights.\(l).\(n)"]), copy: false) }
            func ae(_ type: NodeType, _ which: String, _ input: AutoencoderInput) throws {
                let a = "autoencoders.\(which).\(l)"
                try model.setAutoencoder(type, layer: l, input: input, decoder: view(f["\(a).decoder_weight"]), copy: false)
                try model.setAutoencoderEncoder(type, layer: l, encoder: view(f["\(a).encoder_weight"]),
                                                latentBias: view(f["\(a).latent_bias"]), preBias: view(f["\(a).pre_bias"]), copy: false)
            }
            if name == "mlp" || name == "both" { try ae(.mlpAutoencoderLatent, "mlp", .mlpPostAct) }
            if name == "attn" || name == "both" { try ae(.attentionAutoencoderLatent, "attention", .residual) }
        }
        for a in EdgeFixture.manifest["activations"] as! [[String: Any]] where a["store"] as! String == name {
            let location = ActivationLocation.named(a["location"] as! String)!
            let pass: Pass = a["pass"] as! String == "backward" ? .backward : .forward
            let layer = location.hasLayer ? a["layer"] as! Int : Model.noLayer
            try store.put(location, layer: layer, view(f[a["tensor"] as! String]), pass: pass)
        }
    }

    func view(_ t: Fixture.Tensor) -> TensorView {
        let b = Buffer(t.values, shape: t.shape, dtype: 0)
        buffers.append(b)
        return try! TensorView(base: UnsafeRawPointer(b.raw), dtype: .float32, shape: t.shape.map(Int.init), strides: nil, name: "test")
    }

    /// One edge DST at one layer through the core.
    func run(_ dst: DerivedScalar, layer: Int, node: EdgeNode?, detach: Bool, threads: Int = 1,
             zeroed: Bool = false) throws(NodeWriteError) -> (shape: [Int], values: [Float]) {
        let run = try EdgeRun(dst, model: model, store: store, layer: layer, node: node, detach: detach, threads: threads,
                              outputZeroed: zeroed)
        var out = [Float](repeating: zeroed ? 0 : .nan, count: run.count)
        try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
        return (run.shape, out)
    }
}

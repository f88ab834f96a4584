@testable import NodeWriteCore

/// The fixture's model and activations as the core's own types (no C ABI).
final class CoreSetup: @unchecked Sendable {
    let model: Model
    var store = ActivationStore()
    private var buffers: [Buffer] = []

    /// autoencoders: "none", "single" (the MLP autoencoder as autoencoder_latent) or "multi".
    /// transposed: the weights viewed by strides from the checkpoint's (d_model, inputs) matrices.
    init(autoencoders: String, transposed: Bool = false) throws {
        model = Model(dims: try ModelDims(nLayers: 3, dModel: 48, nHeads: 3, dHead: 16, dFF: 192))
        let f = Fixture.shared
        for l in 0..<3 {
            if transposed {
                let mlp = f["checkpoint.xf_layers.\(l).mlp.out_layer.weight"]
                let attn = f["checkpoint.xf_layers.\(l).attn.out_proj.weight"]
                try model.setWeight(.mlpToResidual, layer: l, view: view(mlp.values, [192, 48], strides: [1, 192]), copy: false)
                try model.setWeight(.attnToResidual, layer: l, view: view(attn.values, [3, 16, 48], strides: [16, 1, 48]), copy: false)
            } else {
                try model.setWeight(.mlpToResidual, layer: l, view: view(f["weights.\(l).mlp.to_residual"]), copy: false)
                try model.setWeight(.attnToResidual, layer: l, view: view(f["weights.\(l).attn.to_residual"]), copy: false)
            }
            let mlpAE = view(f["autoencoders.mlp.\(l).decoder_weight"])
            let attnAE = view(f["autoencoders.attention.\(l).decoder_weight"])
            if autoencoders == "single" {
                try model.setAutoencoder(.autoencoderLatent, layer: l, input: .mlpPostAct, decoder: mlpAE, copy: false)
            } else if autoencoders == "multi" {
                try model.setAutoencoder(.mlpAutoencoderLatent, layer: l, input: .mlpPostAct, decoder: mlpAE, copy: false)
                try model.setAutoencoder(.attentionAutoencoderLatent, layer: l, input: .residual, decoder: attnAE, copy: false)
            }
            for location in ActivationLocation.allCases {
                let name = "activations.\(l).\(location.name)"
                guard Fixture.shared.has(name) else { continue }
                try store.put(location, layer: l, view(f[name]))
            }
        }
    }

    /// A view of a copy of `values` that lives as long as this setup.
    func view(_ values: [Float], _ shape: [Int], strides: [Int]? = nil) -> TensorView {
        let b = Buffer(values, shape: shape.map(Int64.init), dtype: 0)
        buffers.append(b)
        return try! TensorView(base: UnsafeRawPointer(b.raw), dtype: .float32, shape: shape, strides: strides, name: "test")
    }

    func view(_ t: Fixture.Tensor) -> TensorView { view(t.values, t.shape.map(Int.init)) }

    /// The write vectors of a node set (n × d_model), or the error.
    func writes(_ type: NodeType, layer: Int, _ indices: [[Int]]) throws(NodeWriteError) -> (values: [Float], rows: [Int64]) {
        let k = indices.first?.count ?? type.indexCount
        let flat = indices.flatMap { $0.map(Int64.init) }
        var out = [Float](repeating: .nan, count: indices.count * 48)
        var rows = [Int64](repeating: -1, count: indices.count)
        try flat.withUnsafeBufferPointer { (idx) throws(NodeWriteError) in
            let set = try NodeSet(model: model, nodeType: type, layer: layer, indices: idx, count: indices.count, indexCount: k)
            try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in
                try rows.withUnsafeMutableBufferPointer { (r) throws(NodeWriteError) in
                    try set.writes(store, into: o, tokenRows: r.baseAddress)
                }
            }
        }
        return (out, rows)
    }

    /// One node's write vector through its deriver, and its token row.
    func single(_ type: NodeType, layer: Int, _ indices: [Int]) throws(NodeWriteError) -> ([Float], Int) {
        var fixed = NodeIndices(repeating: 0)
        for (i, v) in indices.enumerated() { fixed[i] = v }
        let d = try NodeWriteDeriver(model: model, node: NodeIndex(type, layer: layer, indices: fixed))
        var out = [Float](repeating: .nan, count: 48)
        let row = try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try d.deriveVector(store, into: o) }
        return (out, row)
    }
}

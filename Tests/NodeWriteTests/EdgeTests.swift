import Foundation
import Testing
@testable import NodeWriteCore

/// Every case of tdb_edges through the core: within 1e-5 × max(1, max |TDB|), exact zeros where
/// TDB's are zero, TDB's AssertionError (both autoencoders loaded) as `.unsupported`.
@Suite struct EdgeParityTests {
    static let cases = EdgeFixture.cases

    /// max |got - want| / max(1, max |want|), or nil when an exact zero of TDB's is not zero here.
    static func compare(_ got: [Float], _ want: [Float]) -> Float? {
        guard got.count == want.count else { return .infinity }
        var scale: Float = 1, worst: Float = 0
        for w in want { scale = max(scale, abs(w)) }
        for (g, w) in zip(got, want) {
            if w == 0 && g != 0 { return nil }
            worst = max(worst, abs(g - w))
        }
        return worst / scale
    }

    @Test(arguments: cases)
    func matchesTDB(_ c: EdgeFixture.Case) throws {
        let setup = EdgeFixture.setup(c.store)
        if c.group == "single_node_write" {
            let n = c.node!
            let inputs = EdgeInputs(model: setup.model, store: setup.store, threads: 1, detach: false)
            let up = try inputs.upstreamWrite(n.node, tokens: 7)
            let want = Fixture.edges[c.expected["\(n.node.layer)"]!].values
            var got = [Float](repeating: 0, count: 7 * 48)
            for d in 0..<48 { got[up.row * 48 + d] = up.write[d] }
            let err = Self.compare(got, want)
            #expect(err != nil && err! <= 1e-5, "\(c): \(String(describing: err))")
            return
        }
        let dst = DerivedScalar.named(c.dst)!
        if c.error != nil {
            #expect(c.error == "AssertionError")
            for layer in c.layers {
                #expect(throws: NodeWriteError.self) { _ = try setup.run(dst, layer: layer, node: c.node, detach: c.detach) }
                do { _ = try setup.run(dst, layer: layer, node: c.node, detach: c.detach) } catch {
                    #expect(error.code == .unsupported, "\(c) at layer \(layer): \(error.message)")
                }
            }
            return
        }
        for (key, tensor) in c.expected {
            let layer = key == "none" ? Model.noLayer : Int(key)!
            let want = Fixture.edges[tensor]
            let (shape, got) = try setup.run(dst, layer: layer, node: c.node, detach: c.detach)
            #expect(shape == want.shape.map(Int.init), "\(c) layer \(key): shape \(shape)")
            let err = Self.compare(got, want.values)
            #expect(err != nil && err! <= 1e-5, "\(c) layer \(key): error \(String(describing: err))")
        }
    }

    /// The same bits on 1, 2 and 3 threads, and into a zeroed output with NW_OUT_ZEROED.
    @Test(arguments: cases.filter { $0.error == nil && $0.group != "single_node_write" }.enumerated().filter { $0.offset % 7 == 0 }.map(\.element))
    func threadsAndZeroedOutputs(_ c: EdgeFixture.Case) throws {
        let setup = EdgeFixture.setup(c.store)
        let dst = DerivedScalar.named(c.dst)!
        for layer in c.layers {
            let one = try setup.run(dst, layer: layer, node: c.node, detach: c.detach, threads: 1).values
            for threads in [2, 3] {
                let many = try setup.run(dst, layer: layer, node: c.node, detach: c.detach, threads: threads).values
                #expect(one.map(\.bitPattern) == many.map(\.bitPattern), "\(c) layer \(layer) threads \(threads)")
            }
            let z = try setup.run(dst, layer: layer, node: c.node, detach: c.detach, zeroed: true).values
            #expect(one == z, "\(c) layer \(layer) zeroed")
        }
    }
}

@Suite struct EdgePropertyTests {
    static func close(_ a: [Float], _ b: [Float], _ tol: Float = 2e-5) -> Bool {
        var scale: Float = 1, worst: Float = 0
        for x in b { scale = max(scale, abs(x)) }
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) }
        return a.count == b.count && worst / scale <= tol
    }

    /// In-edges from a write w on row u through the internal API.
    static func inEdge(_ setup: EdgeSetup, _ d: EdgeSpec.Downstream, layer: Int, u: Int, write: [Float],
                       side: Side = .mlp, upLayer: Int = 0, detach: Bool) throws -> [Float] {
        let inputs = EdgeInputs(model: setup.model, store: setup.store, threads: 1, detach: detach)
        let edges = InEdges(inputs: inputs, layer: layer, tokens: 7, up: UpstreamWrite(side: side, layer: upLayer, row: u, write: write), threads: 1)
        let n = d == .mlp ? 7 * 192 : (d == .autoencoder ? 7 * 56 : 7 * 7 * 3)
        var out = [Float](repeating: .nan, count: n)
        try out.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in
            switch d {
            case .mlp: try edges.mlp(out: o.baseAddress!, zeroed: false)
            case .autoencoder: try edges.autoencoder(try inputs.autoencoder(.attentionAutoencoderLatent, layer), out: o.baseAddress!, zeroed: false)
            default: try edges.attention(d, out: o.baseAddress!, zeroed: false)
            }
        }
        return out
    }

    /// The in-edge of the sum of two writes on one row is the sum of their in-edges.
    @Test(arguments: [EdgeSpec.Downstream.query, .key, .value, .mlp, .autoencoder])
    func inEdgesAreLinear(_ d: EdgeSpec.Downstream) throws {
        let setup = EdgeFixture.setup("attn")
        var w1 = [Float](repeating: 0, count: 48), w2 = w1
        for i in 0..<48 { w1[i] = sin(Float(i) * 0.7); w2[i] = cos(Float(i) * 1.3) * 0.5 }
        let sum = zip(w1, w2).map { $0 + $1 }
        for detach in [false, true] {
            let a = try Self.inEdge(setup, d, layer: 1, u: 3, write: w1, detach: detach)
            let b = try Self.inEdge(setup, d, layer: 1, u: 3, write: w2, detach: detach)
            let c = try Self.inEdge(setup, d, layer: 1, u: 3, write: sum, detach: detach)
            #expect(Self.close(zip(a, b).map { $0 + $1 }, c), "\(d) detach \(detach)")
        }
    }

    /// Where the write is orthogonal to the LayerNorm's xhat (centred), the scale's derivative
    /// is zero and detaching it changes nothing.
    @Test(arguments: [EdgeSpec.Downstream.query, .key, .value, .mlp])
    func detachedEqualsNotDetachedWhereTheScaleDoesNotMove(_ d: EdgeSpec.Downstream) throws {
        let setup = EdgeFixture.setup("none")
        let u = 4, layer = 1
        let (loc, l) = d == .mlp ? (ActivationLocation.residPostAttn, layer) : (.residPostMLP, layer - 1)
        let x = setup.store[loc, l]!
        var xc = (0..<48).map { x.value(at: x.offset(u, $0)) }
        let m = xc.reduce(0, +) / 48
        xc = xc.map { $0 - m }
        var w = (0..<48).map { Float(sin(Double($0) * 0.37)) }
        let mw = w.reduce(0, +) / 48
        w = w.map { $0 - mw }
        var wx: Float = 0, xx: Float = 0
        for i in 0..<48 { wx += w[i] * xc[i]; xx += xc[i] * xc[i] }
        let k = wx / xx
        w = zip(w, xc).map { $0 - k * $1 }
        let a = try Self.inEdge(setup, d, layer: layer, u: u, write: w, detach: false)
        let b = try Self.inEdge(setup, d, layer: layer, u: u, write: w, detach: true)
        #expect(Self.close(a, b, 1e-4), "\(d)")
        // and it is not the trivial zero
        #expect(a.contains { $0 != 0 })
    }

    /// Out-edges summed over every upstream node of a layer equal the layer's whole write
    /// (resid.delta_*, less its output bias) projected onto G.
    @Test(arguments: EdgeFixture.cases.filter { $0.error == nil && $0.store == "none" && ($0.dst == "mlp_out_edge_attribution" || $0.dst == "attn_out_edge_attribution") })
    func outEdgesSumToTheLayersWrite(_ c: EdgeFixture.Case) throws {
        let setup = EdgeFixture.setup(c.store)
        let n = c.node!
        let G = try setup.run(.gradOfSingleSubnodeAttribution, layer: n.node.layer, node: n, detach: c.detach).values
        let attn = c.dst.hasPrefix("attn")
        for l in 0..<3 {
            let out = try setup.run(DerivedScalar.named(c.dst)!, layer: l, node: n, detach: c.detach).values
            let delta = setup.store[attn ? .residDeltaAttn : .residDeltaMLP, l]!
            let bias = setup.model.weight(attn ? .attnOutBias : .mlpOutBias, layer: l)!.view
            let width = out.count / 7
            let reaches = attn ? (2 * l + 1 < (n.node.nodeType == .attentionHead || n.node.nodeType == .attentionAutoencoderLatent ? 2 * n.node.layer + 1 : 2 * n.node.layer + 2))
                               : (2 * l + 2 < (n.node.nodeType == .attentionHead || n.node.nodeType == .attentionAutoencoderLatent ? 2 * n.node.layer + 1 : 2 * n.node.layer + 2))
            for t in 0..<7 {
                let summed = out[(t * width)..<((t + 1) * width)].reduce(0.0) { $0 + Double($1) }
                var want = 0.0
                for d in 0..<48 { want += Double(delta.value(at: delta.offset(t, d)) - bias.value(at: d)) * Double(G[t * 48 + d]) }
                if reaches {
                    #expect(abs(summed - want) <= 1e-4 * max(1, abs(want)), "\(c) layer \(l) row \(t): \(summed) vs \(want)")
                } else {
                    #expect(summed == 0)
                }
            }
        }
    }
}

/// Inputs that are not contiguous float32 (float64 activations, weights viewed by strides of a
/// transposed copy) are read through a float32 copy: the same bits as the float32 inputs.
@Suite struct EdgeLayoutTests {
    /// The fixture's store and model again, with every activation as float64 and every weight
    /// of two or more dimensions viewed by strides from its transposed (column-major) copy.
    final class Converted: @unchecked Sendable {
        let model: Model
        var store = ActivationStore()
        private var keep: [UnsafeMutableRawPointer] = []

        init(_ base: EdgeSetup, store name: String) throws {
            model = Model(dims: base.model.dims)
            for w in WeightLocation.allCases where w.hasLayer {
                for l in 0..<3 {
                    guard let s = base.model.weight(w, layer: l) else { continue }
                    try model.setWeight(w, layer: l, view: transposedView(s.view), copy: false)
                }
            }
            for type in NodeType.allCases where type.isLatent {
                for l in 0..<3 {
                    guard let ae = base.model.autoencoder(type, layer: l), let e = base.model.encoder(type, layer: l) else { continue }
                    try model.setAutoencoder(type, layer: l, input: ae.input, decoder: transposedView(ae.decoder.view), copy: false)
                    try model.setAutoencoderEncoder(type, layer: l, encoder: transposedView(e.weight.view), latentBias: e.latentBias?.view,
                                                    preBias: e.preBias?.view, copy: false)
                }
            }
            for a in EdgeFixture.manifest["activations"] as! [[String: Any]] where a["store"] as! String == name {
                let location = ActivationLocation.named(a["location"] as! String)!
                let pass: Pass = a["pass"] as! String == "backward" ? .backward : .forward
                let layer = location.hasLayer ? a["layer"] as! Int : Model.noLayer
                try store.put(location, layer: layer, float64View(base.store[location, layer, pass]!), pass: pass)
            }
        }

        deinit { for p in keep { p.deallocate() } }

        private func transposedView(_ v: TensorView) throws -> TensorView {
            guard v.ndim >= 2 else { return v }
            // Column-major copy: element (i, j, k) at i + j·s0 + k·s0·s1.
            let s = v.shapeArray, n = v.count
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, n) * 4, alignment: 16)
            keep.append(p)
            let f = p.bindMemory(to: Float.self, capacity: max(1, n))
            var strides = [1, s[0]]
            if s.count == 3 { strides.append(s[0] * s[1]) }
            for i in 0..<s[0] {
                for j in 0..<s[1] {
                    for k in 0..<(s.count == 3 ? s[2] : 1) {
                        f[i + j * strides[1] + (s.count == 3 ? k * strides[2] : 0)] = v.value(at: v.offset(i, j, k))
                    }
                }
            }
            return try TensorView(base: UnsafeRawPointer(p), dtype: .float32, shape: s, strides: strides, name: "transposed")
        }

        private func float64View(_ v: TensorView) throws -> TensorView {
            let n = v.count, s = v.shapeArray
            let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, n) * 8, alignment: 16)
            keep.append(p)
            let d = p.bindMemory(to: Double.self, capacity: max(1, n))
            var z = 0
            for i in 0..<s[0] {
                for j in 0..<(s.count > 1 ? s[1] : 1) {
                    for k in 0..<(s.count > 2 ? s[2] : 1) { d[z] = Double(v.value(at: v.offset(i, j, k))); z += 1 }
                }
            }
            return try TensorView(base: UnsafeRawPointer(p), dtype: .float64, shape: s, strides: nil, name: "float64")
        }
    }

    @Test(arguments: EdgeFixture.cases.filter { $0.error == nil && $0.group != "single_node_write" }.enumerated()
        .filter { $0.offset % 5 == 0 }.map(\.element))
    func sameBitsFromOtherLayouts(_ c: EdgeFixture.Case) throws {
        let base = EdgeFixture.setup(c.store)
        let other = try Converted(base, store: c.store)
        let dst = DerivedScalar.named(c.dst)!
        for layer in c.layers {
            let want = try base.run(dst, layer: layer, node: c.node, detach: c.detach).values
            let run = try EdgeRun(dst, model: other.model, store: other.store, layer: layer, node: c.node, detach: c.detach, threads: 2)
            var got = [Float](repeating: .nan, count: run.count)
            try got.withUnsafeMutableBufferPointer { (o) throws(NodeWriteError) in try run.derive(into: o.baseAddress!) }
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(c) layer \(layer)")
        }
    }
}

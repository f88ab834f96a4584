/// Which part of an attention head a downstream subnode is (TDB's AttnSubNodeIndex
/// q_k_or_v). Raw values are the C ABI's `nw_subnode`.
package enum Subnode: Int32, CaseIterable, Sendable {
    case none = 0, query = 1, key = 2, value = 3
}

/// The node argument of an edge call: a node, and for an attention head downstream which of
/// Q, K, V. An index of `EdgeNode.none` is TDB's None (a trace latent's token).
package struct EdgeNode: Equatable, Sendable {
    package let node: NodeIndex
    package let subnode: Subnode

    package static let none = Int.min

    package init(_ node: NodeIndex, subnode: Subnode = .none) {
        self.node = node
        self.subnode = subnode
    }
}

/// An upstream node's write: one residual row u.
struct UpstreamWrite {
    /// The block it writes from.
    let side: Side
    let layer: Int
    let row: Int
    /// (d_model,)
    let write: [Float]
}

extension EdgeInputs {
    /// A node's index `i`, resolved against a dimension of `size` (negative counts from the end).
    func index(_ node: NodeIndex, _ i: Int, size: Int) throws(NodeWriteError) -> Int {
        let name = "node.indices[\(i)] (\(node.nodeType.kind.indexNames[i]))"
        guard node.indices[i] != EdgeNode.none else {
            throw .invalidArgument("\(name) is NW_INDEX_NONE; only a trace latent's token may be")
        }
        return try resolveIndex(node.indices[i], size: size, dimension: i, what: name)
    }

    /// The write of an upstream node (TDB's single-node write), with the side it comes from.
    func upstreamWrite(_ node: NodeIndex, tokens: Int) throws(NodeWriteError) -> UpstreamWrite {
        let L = node.layer, D = dims.dModel
        try model.checkLayer(L, "node.layer")
        var w = [Float](repeating: 0, count: D)
        switch node.nodeType {
        case .mlpNeuron:
            let a = try activation(.mlpPostAct, L, .forward, [tokens, dims.dFF])
            let wOut = try weight(.mlpToResidual, L)
            let t = try index(node, 0, size: tokens), n = try index(node, 1, size: dims.dFF)
            let s = a[t &* dims.dFF &+ n]
            for d in 0..<D { w[d] = s * wOut[n &* D &+ d] }
            return UpstreamWrite(side: .mlp, layer: L, row: t, write: w)
        case .attentionHead:
            let H = dims.nHeads, dh = dims.dHead
            let p = try activation(.attnQKProbs, L, .forward, [tokens, tokens, H])
            let v = try activation(.attnValue, L, .forward, [tokens, H, dh])
            let wO = try weight(.attnToResidual, L)
            let q = try index(node, 0, size: tokens), k = try index(node, 1, size: tokens), h = try index(node, 2, size: H)
            let s = p[(q &* tokens &+ k) &* H &+ h]
            w.withUnsafeMutableBufferPointer { w in
                product(1, D, dh, mat(v + (k &* H &+ h) &* dh, dh), mat(wO + h &* dh &* D, D), w.baseAddress!, D)
                for d in 0..<D { w[d] = s * w[d] }
            }
            return UpstreamWrite(side: .attention, layer: L, row: q, write: w)
        case .autoencoderLatent, .mlpAutoencoderLatent, .attentionAutoencoderLatent:
            let ae = try autoencoder(node.nodeType, L)
            let z = try latents(ae, .forward, tokens: tokens, generic: node.nodeType == .autoencoderLatent)
            let t = try index(node, 0, size: tokens), j = try index(node, 1, size: ae.latents)
            let dec = try contiguousDecoder(ae)
            let s = z[t &* ae.latents &+ j]
            let inputs = ae.autoencoder.decoder.view.shape[1], row = dec + j &* inputs
            let through: UnsafePointer<Float>? = switch ae.input {
            case .mlpPostAct: try weight(.mlpToResidual, L)
            case .attnZ: try weight(.attnToResidual, L)
            case .residual: nil
            }
            w.withUnsafeMutableBufferPointer { w in
                if let through { product(1, D, inputs, mat(row, inputs), mat(through, D), w.baseAddress!, D) } else {
                    for d in 0..<D { w[d] = row[d] }
                }
                for d in 0..<D { w[d] = s * w[d] }
            }
            return UpstreamWrite(side: ae.side, layer: L, row: t, write: w)
        }
    }
}

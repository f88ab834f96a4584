/// A node set: nodes of one type at one layer, their indices the rows of a caller's
/// row-major int64 array of shape (n, k), k the type's index count.
package struct NodeSet {
    package let source: NodeSource
    package let indices: UnsafeBufferPointer<Int64>
    package let count: Int

    /// - Throws: `.invalidArgument` for a wrong k or an index array too short for n rows;
    ///   what `NodeSource` throws for the layer, weights and autoencoders.
    package init(model: Model, nodeType: NodeType, layer: Int, indices: UnsafeBufferPointer<Int64>,
                 count: Int, indexCount: Int) throws(NodeWriteError) {
        try checkIndexCount(indexCount, nodeType, "n_indices")
        let (needed, overflow) = count.multipliedReportingOverflow(by: indexCount)
        guard count >= 0, !overflow, indices.count >= needed else {
            throw .invalidArgument("n_nodes = \(count) is too large")
        }
        source = try NodeSource(model: model, nodeType: nodeType, layer: layer)
        self.indices = indices
        self.count = count
    }

    /// Node i's indices.
    @inline(__always)
    package func indices(of i: Int) -> NodeIndices {
        let k = source.nodeType.indexCount, row = i &* k
        var out = NodeIndices(repeating: 0)
        for j in 0..<k { out[j] = Int(indices[row &+ j]) }
        return out
    }

    /// Resolves every node against the store (all indices checked before `body` runs),
    /// then calls `body` with the form and the resolved nodes.
    package func withResolved<R>(_ store: ActivationStore,
                                 _ body: (LayerForm, UnsafeBufferPointer<ResolvedNode>) throws(NodeWriteError) -> R)
        throws(NodeWriteError) -> R {
        let form = try source.resolve(store)
        return try withScratch(ResolvedNode.self, count: count, "the node set") { (nodes) throws(NodeWriteError) -> R in
            if !resolveInRange(form, into: nodes) {
                // Some index is negative (counted from the end) or out of range: node by node,
                // so that an error names the first offending node.
                for i in 0..<count {
                    do throws(NodeWriteError) {
                        nodes[i] = try form.resolve(indices(of: i))
                    } catch {
                        throw error.prefixed("nodes[\(i)]: ")
                    }
                }
            }
            return try body(form, UnsafeBufferPointer(start: nodes, count: count))
        }
    }

    /// Resolves every node when each index is already in [0, size) of its dimension, which one
    /// pass over the array decides (the largest index of each column, read as unsigned so that
    /// a negative one is too large, against the column's size); false, writing nothing, when
    /// some index is not, which the node-by-node path then resolves or reports.
    private func resolveInRange(_ form: LayerForm, into nodes: UnsafeMutablePointer<ResolvedNode>) -> Bool {
        guard count > 0, let p = indices.baseAddress else { return true }
        let k = source.nodeType.indexCount
        let raw = UnsafeRawPointer(p).assumingMemoryBound(to: UInt64.self)
        var bound = InlineArray<3, UInt64>(repeating: 0)
        bound[0] = UInt64(form.tokens)
        bound[k &- 1] = UInt64(source.width)
        if k == 3 { bound[1] = UInt64(form.scalars.shape[1]) }
        switch k {
        case 2:
            var m0: UInt64 = 0, m1: UInt64 = 0
            for i in 0..<count { m0 = max(m0, raw[2 &* i]); m1 = max(m1, raw[2 &* i &+ 1]) }
            guard m0 < bound[0], m1 < bound[1] else { return false }
        case 3:
            var m0: UInt64 = 0, m1: UInt64 = 0, m2: UInt64 = 0
            for i in 0..<count {
                m0 = max(m0, raw[3 &* i]); m1 = max(m1, raw[3 &* i &+ 1]); m2 = max(m2, raw[3 &* i &+ 2])
            }
            guard m0 < bound[0], m1 < bound[1], m2 < bound[2] else { return false }
        default:
            return false
        }
        let scalars = form.scalars
        if k == 2 {
            let s0 = scalars.strides[0], s1 = scalars.strides[1]
            if scalars.dtype == .float32, let base = scalars.base {
                for i in 0..<count {
                    let token = Int(p[2 &* i]), slot = Int(p[2 &* i &+ 1])
                    var node = ResolvedNode()
                    node.token = token
                    node.slot = slot
                    node.scalar = base.loadUnaligned(fromByteOffset: (token &* s0 &+ slot &* s1) &* 4, as: Float.self)
                    nodes[i] = node
                }
            } else {
                for i in 0..<count {
                    let token = Int(p[2 &* i]), slot = Int(p[2 &* i &+ 1])
                    var node = ResolvedNode()
                    node.token = token
                    node.slot = slot
                    node.scalar = scalars.value(at: scalars.offset(token, slot))
                    nodes[i] = node
                }
            }
        } else {
            // Same values as LayerForm.resolve: a causal model's key after the query scales by 0.
            let causal = source.causal
            for i in 0..<count {
                let token = Int(p[3 &* i]), key = Int(p[3 &* i &+ 1]), slot = Int(p[3 &* i &+ 2])
                var node = ResolvedNode()
                node.token = token
                node.key = key
                node.slot = slot
                node.scalar = causal && key > token ? 0 : scalars.value(at: scalars.offset(token, key, slot))
                nodes[i] = node
            }
        }
        return true
    }

    /// The n write vectors into `out` (n × d_model, row-major) and each node's token row
    /// into `tokenRows`. On error nothing is written.
    package func writes(_ store: ActivationStore, into out: UnsafeMutableBufferPointer<Float>,
                        tokenRows: UnsafeMutablePointer<Int64>?) throws(NodeWriteError) {
        let dModel = source.dims.dModel
        let (needed, overflow) = count.multipliedReportingOverflow(by: dModel)
        guard !overflow, out.count >= needed else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than n_nodes × d_model = \(count) × \(dModel)")
        }
        try withResolved(store) { (form, nodes) throws(NodeWriteError) in
            guard let base = out.baseAddress, !nodes.isEmpty else { return }
            let outSpan = OutputSpan(base, count: needed, "out"), rowsSpan = OutputSpan(tokenRows, count: count, "token_rows")
            try form.ensureDisjoint(outSpan)
            try form.ensureDisjoint(rowsSpan)
            try rowsSpan.ensureDisjoint(from: outSpan)
            try form.writeVectors(nodes, into: base)
            if let tokenRows { for i in 0..<count { tokenRows[i] = Int64(nodes[i].token) } }
        }
    }
}

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
            for i in 0..<count {
                do throws(NodeWriteError) {
                    nodes[i] = try form.resolve(indices(of: i))
                } catch {
                    throw error.prefixed("nodes[\(i)]: ")
                }
            }
            return try body(form, UnsafeBufferPointer(start: nodes, count: count))
        }
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

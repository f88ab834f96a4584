/// One node, as TDB's `NodeIndex` for the forward pass: a node type, a layer and
/// tensor indices in TDB's order, negative ones counting from the end.
package struct NodeIndex: Equatable, Sendable {
    package let nodeType: NodeType
    package let layer: Int
    /// (token, neuron), (query, key, head) or (token, latent); unused entries are 0.
    package let indices: NodeIndices

    /// `indices` holds the node type's index count of entries (see `checkIndexCount`).
    package init(_ nodeType: NodeType, layer: Int, indices: NodeIndices) {
        self.nodeType = nodeType
        self.layer = layer
        self.indices = indices
    }

    package static func == (a: NodeIndex, b: NodeIndex) -> Bool {
        a.nodeType == b.nodeType && a.layer == b.layer
            && (0..<3).allSatisfy { a.indices[$0] == b.indices[$0] }
    }
}

/// `.invalidArgument` unless `count` is the node type's number of indices.
package func checkIndexCount(_ count: Int, _ nodeType: NodeType, _ what: String) throws(NodeWriteError) {
    guard count == nodeType.indexCount else {
        let names = nodeType.kind.indexNames.map(\.description).joined(separator: ", ")
        throw .invalidArgument("\(what) = \(count) but \(nodeType.name) takes \(nodeType.indexCount) indices (\(names))")
    }
}

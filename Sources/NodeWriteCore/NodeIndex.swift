/// One node, as TDB's `NodeIndex` for the forward pass: a node type, a layer and
/// tensor indices in TDB's order, negative ones counting from the end.
public struct NodeIndex: Equatable, Sendable {
    public let nodeType: NodeType
    public let layer: Int
    /// (token, neuron), (query, key, head) or (token, latent); unused entries are 0.
    public let indices: InlineArray<3, Int>

    /// - Throws: `.invalidArgument` when the number of indices does not fit the node type.
    public init(_ nodeType: NodeType, layer: Int, indices given: [Int]) throws(NodeWriteError) {
        guard given.count == nodeType.indexCount else {
            throw .invalidArgument("node.n_indices = \(given.count) but \(nodeType.name) takes \(nodeType.indexCount)")
        }
        var indices = InlineArray<3, Int>(repeating: 0)
        for i in 0..<given.count { indices[i] = given[i] }
        self.init(nodeType, layer: layer, checkedIndices: indices)
    }

    /// Indices already known to be `nodeType.indexCount` long.
    public init(_ nodeType: NodeType, layer: Int, checkedIndices indices: InlineArray<3, Int>) {
        self.nodeType = nodeType
        self.layer = layer
        self.indices = indices
    }

    public static func == (a: NodeIndex, b: NodeIndex) -> Bool {
        a.nodeType == b.nodeType && a.layer == b.layer
            && (0..<3).allSatisfy { a.indices[$0] == b.indices[$0] }
    }
}

/// Resolves a Python-style index (negative counts from the end) against a dimension
/// of `size`, or throws TDB's IndexError as `.indexOutOfRange`.
@inline(__always)
func resolveIndex(_ index: Int, size: Int, dimension: Int, what: String) throws(NodeWriteError) -> Int {
    let resolved = index < 0 ? index &+ size : index  // no overflow: size >= 0
    guard resolved >= 0, resolved < size else {
        throw .indexOutOfRange("\(what): index \(index) is out of bounds for dimension \(dimension) with size \(size)")
    }
    return resolved
}

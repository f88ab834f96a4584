/// Write vectors of resolved nodes: row i of the output is the write of node i. Nodes that
/// share a block (one head; all latents of an MLP autoencoder) are one blocked product.
extension LayerForm {
    /// Rows of the coefficient matrix built per product (bounds scratch memory).
    static let chunkRows = 2048

    /// Writes the write vector of `nodes[i]` into `out[i * d_model ..< (i + 1) * d_model]`.
    package func writeVectors(_ nodes: UnsafeBufferPointer<ResolvedNode>,
                              into out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        guard !nodes.isEmpty else { return }
        switch source.blocks {
        case .rows(let w): try rowWrites(w.view, nodes, out)
        case .heads(let w): try headWrites(w.view, nodes, out)
        case .decodedRows(let decoder, let through): try decodedWrites(decoder.view, through.view, nodes, out)
        }
    }

    /// s · W[r, :]: one term per output element.
    private func rowWrites(_ w: TensorView, _ nodes: UnsafeBufferPointer<ResolvedNode>,
                           _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let n = dModel
        guard w.dtype == .float32, nodes.count > 1 else {
            for (i, node) in nodes.enumerated() {
                let row = out + i &* n, offset = w.offset(node.slot, 0), stride = w.strides[1]
                for j in 0..<n { row[j] = Float(0).addingProduct(node.scalar, w.value(at: offset &+ j &* stride)) }
            }
            return
        }
        try withScratch(Float.self, count: nodes.count, "node scalars") { (scales) throws(NodeWriteError) in
            try withScratch(Int.self, count: nodes.count, "node rows") { (rows) throws(NodeWriteError) in
                for (i, node) in nodes.enumerated() { scales[i] = node.scalar; rows[i] = node.slot }
                try w.withF32Block(offset: 0, rows: w.shape[0], columns: n, rowStride: w.strides[0],
                                   columnStride: w.strides[1]) { (b) throws(NodeWriteError) in
                    Kernels.scaledRows(m: nodes.count, n: n, scales: scales, rows: rows, b: b, c: out, cRowStride: n, threads: Kernels.threads)
                }
            }
        }
    }

    /// p · v[k, h, :] @ W_O[h]: per head, one product over its nodes.
    private func headWrites(_ w: TensorView, _ nodes: UnsafeBufferPointer<ResolvedNode>,
                            _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let dHead = source.dims.dHead, heads = source.dims.nHeads
        if nodes.count == 1 {
            let node = nodes[0]
            try withUnsafeTemporaryAllocation(of: Float.self, capacity: dHead) { (x) throws(NodeWriteError) in
                fillValueRow(x.baseAddress.unsafelyUnwrapped, node)
                try headProduct(w, head: node.slot, rows: 1, x.baseAddress.unsafelyUnwrapped, out, dModel)
            }
            return
        }
        // Nodes in head order (a stable counting sort), then each head's nodes as one product.
        try withScratch(Int.self, count: nodes.count &+ heads &+ 1, "node order") { (order) throws(NodeWriteError) in
            let start = order + nodes.count  // start[h] ..< start[h + 1] in order[]
            for h in 0...heads { start[h] = 0 }
            for node in nodes { start[node.slot &+ 1] &+= 1 }
            for h in 0..<heads { start[h &+ 1] &+= start[h] }
            try withScratch(Int.self, count: heads, "node order") { (next) throws(NodeWriteError) in
                for h in 0..<heads { next[h] = start[h] }
                for (i, node) in nodes.enumerated() { order[next[node.slot]] = i; next[node.slot] &+= 1 }
            }
            // Heads run in parallel (each product on one thread) when there are enough of them;
            // otherwise each head's product is split over the threads.
            var active: [Int] = []
            for h in 0..<heads where start[h] < start[h &+ 1] { active.append(h) }
            let threads = Kernels.threads, lanes = laneCount(active.count, threads: threads)
            let productThreads = max(1, threads / lanes), chunk = min(nodes.count, Self.chunkRows)
            let perLane = chunk &* (dHead &+ dModel), outputBytes = nodes.count &* dModel &* MemoryLayout<Float>.size
            try w.withF32Heads(heads, dHead, dModel) { (wf) throws(NodeWriteError) in
                try withScratch(Float.self, count: lanes &* perLane, "attention coefficients") { (scratch) throws(NodeWriteError) in
                    parallelFor(active.count, threads: threads) { task, lane in
                        let h = active[task], x = scratch + lane &* perLane, c = x + chunk &* dHead
                        let b = F32Matrix(base: wf.base + h &* wf.strides.0, rowStride: wf.strides.1, columnStride: wf.strides.2)
                        var first = start[h]
                        let end = start[h &+ 1]
                        // Nodes of this head that sit consecutively in the set are written in place.
                        let inPlace = order[end &- 1] &- order[first] == end &- 1 &- first
                        while first < end {
                            let m = min(chunk, end &- first)
                            for r in 0..<m { fillValueRow(x + r &* dHead, nodes[order[first &+ r]]) }
                            let a = F32Matrix(base: x, rowStride: dHead, columnStride: 1)
                            if inPlace {  // a part of the whole output: its size picks the store policy
                                Kernels.gemmInPlace(m: m, n: dModel, k: dHead, a: a, b: b, c: out + order[first] &* dModel,
                                                    cRowStride: dModel, threads: productThreads, outputBytes: outputBytes)
                            } else {
                                Kernels.gemmInPlace(m: m, n: dModel, k: dHead, a: a, b: b, c: c, cRowStride: dModel,
                                                    threads: productThreads)
                                for r in 0..<m { (out + order[first &+ r] &* dModel).update(from: c + r &* dModel, count: dModel) }
                            }
                            first &+= m
                        }
                    }
                }
            }
        }
    }

    /// x[c] = p · v[k, h, c] (0 for a key after the query of a causal model: v[k] is not read).
    @inline(__always)
    private func fillValueRow(_ x: UnsafeMutablePointer<Float>, _ node: ResolvedNode) {
        if source.causal && node.key > node.token {
            x.update(repeating: 0, count: source.dims.dHead)
            return
        }
        let v = values.unsafelyUnwrapped, offset = v.offset(node.key, node.slot, 0), stride = v.strides[2]
        for c in 0..<source.dims.dHead { x[c] = node.scalar * v.value(at: offset &+ c &* stride) }
    }

    /// C (rows × d_model) = X (rows × d_head) @ W_O[head].
    private func headProduct(_ w: TensorView, head: Int, rows: Int, _ x: UnsafeMutablePointer<Float>,
                             _ c: UnsafeMutablePointer<Float>, _ cRowStride: Int) throws(NodeWriteError) {
        let dHead = source.dims.dHead
        try w.withF32Block(offset: w.offset(head, 0, 0), rows: dHead, columns: dModel, rowStride: w.strides[1],
                           columnStride: w.strides[2]) { (b) throws(NodeWriteError) in
            try Kernels.gemm(m: rows, n: dModel, k: dHead, a: F32Matrix(base: x, rowStride: dHead, columnStride: 1),
                             b: b, c: c, cRowStride: cRowStride, threads: Kernels.threads)
        }
    }

    /// z · decoder[i, :] @ W_out: all nodes share W_out, one product per chunk of nodes.
    private func decodedWrites(_ decoder: TensorView, _ w: TensorView, _ nodes: UnsafeBufferPointer<ResolvedNode>,
                               _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let k = decoder.shape[1], n = dModel
        let chunk = max(1, min(nodes.count, 256))
        try w.withF32Block(offset: 0, rows: k, columns: n, rowStride: w.strides[0], columnStride: w.strides[1]) {
            (b) throws(NodeWriteError) in
            try withUnsafeTemporaryAllocation(of: Float.self, capacity: nodes.count == 1 ? k : 0) { (stack) throws(NodeWriteError) in
                func run(_ x: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
                    var first = 0
                    while first < nodes.count {
                        let m = min(chunk, nodes.count &- first)
                        for r in 0..<m {
                            let node = nodes[first &+ r], row = x + r &* k
                            let offset = decoder.offset(node.slot, 0), stride = decoder.strides[1]
                            for a in 0..<k { row[a] = node.scalar * decoder.value(at: offset &+ a &* stride) }
                        }
                        try Kernels.gemm(m: m, n: n, k: k, a: F32Matrix(base: x, rowStride: k, columnStride: 1), b: b,
                                         c: out + first &* n, cRowStride: n, threads: Kernels.threads,
                                         outputBytes: nodes.count &* n &* MemoryLayout<Float>.size)
                        first &+= m
                    }
                }
                if nodes.count == 1 {
                    try run(stack.baseAddress.unsafelyUnwrapped)
                } else {
                    try withScratch(Float.self, count: chunk &* k, "autoencoder coefficients") { (x) throws(NodeWriteError) in try run(x) }
                }
            }
        }
    }
}

/// Token-space writes (TDB's TokenWriteConverter): u = (w ⊙ gain) @ unembedding, then
/// u - mean(u) over the vocabulary. The final layer norm's gain is folded into each write
/// (d_model values), never into the (d_model, n_vocab) unembedding.
extension NodeSet {
    /// Nodes per product with the unembedding (bounds scratch memory).
    static let tokenChunk = 64

    /// The vocabulary size of the model's unembedding.
    /// - Throws: `.missingInput` when the unembedding or the final gain is not set.
    package static func vocabulary(_ model: Model) throws(NodeWriteError) -> (unembedding: TensorView, gain: TensorView) {
        let u = try model.require(.unembedding, layer: Model.noLayer).view
        let g = try model.require(.layerNormGainFinal, layer: Model.noLayer).view
        return (u, g)
    }

    /// Row i of `out` (n × n_vocab) is node i's token-space write. On error nothing is written.
    package func tokenWrites(_ model: Model, _ store: ActivationStore,
                             into out: UnsafeMutableBufferPointer<Float>) throws(NodeWriteError) {
        let (u, _) = try Self.vocabulary(model)
        let vocab = u.shape[1]
        let (needed, o) = count.multipliedReportingOverflow(by: vocab)
        guard !o, out.count >= needed else {
            throw .bufferTooSmall("out: capacity \(out.count) is less than n_nodes × n_vocab = \(count) × \(vocab)")
        }
        try forEachChunk(model, store) { first, m, rows in
            let base = out.baseAddress.unsafelyUnwrapped + first &* vocab
            base.update(from: rows, count: m &* vocab)
        }
    }

    /// The `k` largest (or smallest) entries of each node's token-space write, in order,
    /// ties to the lower token id: values and token ids, each n × k.
    package func tokenWritesTopK(_ model: Model, _ store: ActivationStore, k: Int, largest: Bool,
                                 values: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int64>)
        throws(NodeWriteError) {
        let (u, _) = try Self.vocabulary(model)
        let vocab = u.shape[1]
        guard k >= 1, k <= vocab else { throw .invalidArgument("top_k = \(k) must be 1 to n_vocab = \(vocab)") }
        let (needed, o) = count.multipliedReportingOverflow(by: k)
        guard !o, values.count >= needed, ids.count >= needed else {
            throw .bufferTooSmall("values, token_ids: capacity \(min(values.count, ids.count)) is less than n_nodes × top_k = \(count) × \(k)")
        }
        try withScratch(Int.self, count: k, "top-k heap") { (heap) throws(NodeWriteError) in
            try forEachChunk(model, store) { first, m, rows in
                for r in 0..<m {
                    let i = first &+ r
                    selectTop(rows + r &* vocab, vocab, k, largest, heap,
                              values.baseAddress.unsafelyUnwrapped + i &* k, ids.baseAddress.unsafelyUnwrapped + i &* k)
                }
            }
        }
    }

    /// Computes the token-space writes chunk by chunk (all nodes validated first) and hands
    /// each chunk's rows (m × n_vocab, contiguous) to `body`.
    private func forEachChunk(_ model: Model, _ store: ActivationStore,
                              _ body: (_ first: Int, _ m: Int, _ rows: UnsafeMutablePointer<Float>) -> Void) throws(NodeWriteError) {
        let (u, gain) = try Self.vocabulary(model)
        let vocab = u.shape[1], dModel = source.dims.dModel, chunk = min(count, Self.tokenChunk)
        try withResolved(store) { (form, nodes) throws(NodeWriteError) in
            guard !nodes.isEmpty else { return }
            try u.withF32Block(offset: 0, rows: dModel, columns: vocab, rowStride: u.strides[0], columnStride: u.strides[1]) {
                (b) throws(NodeWriteError) in
                try withScratch(Float.self, count: chunk &* (dModel &+ vocab), "token-space writes") { (scratch) throws(NodeWriteError) in
                    let writes = scratch, rows = scratch + chunk &* dModel
                    var first = 0
                    while first < nodes.count {
                        let m = min(chunk, nodes.count &- first)
                        try form.writeVectors(UnsafeBufferPointer(rebasing: nodes[first..<(first &+ m)]), into: writes)
                        for r in 0..<m {
                            for j in 0..<dModel { writes[r &* dModel &+ j] *= gain.value(at: j &* gain.strides[0]) }
                        }
                        try Kernels.gemm(m: m, n: vocab, k: dModel, a: F32Matrix(base: writes, rowStride: dModel, columnStride: 1),
                                         b: b, c: rows, cRowStride: vocab, threads: Kernels.threads)
                        for r in 0..<m {
                            let row = rows + r &* vocab
                            var sum = 0.0
                            for j in 0..<vocab { sum += Double(row[j]) }
                            let mean = Float(sum / Double(vocab))
                            for j in 0..<vocab { row[j] -= mean }
                        }
                        body(first, m, rows)
                        first &+= m
                    }
                }
            }
        }
    }
}

/// The k best entries of row[0..<n] into values/ids, best first: larger (or smaller) value,
/// then lower index; NaN counts as the largest value, as in torch.topk. `heap` holds k Ints.
func selectTop(_ row: UnsafePointer<Float>, _ n: Int, _ k: Int, _ largest: Bool, _ heap: UnsafeMutablePointer<Int>,
               _ values: UnsafeMutablePointer<Float>, _ ids: UnsafeMutablePointer<Int64>) {
    /// Whether entry a ranks before entry b.
    @inline(__always) func better(_ a: Int, _ b: Int) -> Bool {
        let x = row[a], y = row[b]
        if x.isNaN || y.isNaN {
            if x.isNaN != y.isNaN { return x.isNaN == largest }
            return a < b
        }
        if x != y { return largest ? x > y : x < y }
        return a < b
    }
    // A heap of the k best so far whose root is the worst of them.
    @inline(__always) func siftDown(_ start: Int, _ size: Int) {
        var i = start
        while true {
            let l = 2 &* i &+ 1, r = l &+ 1
            var worst = i
            if l < size, better(heap[worst], heap[l]) { worst = l }
            if r < size, better(heap[worst], heap[r]) { worst = r }
            if worst == i { return }
            heap.swapAt(i, worst)
            i = worst
        }
    }
    for j in 0..<k { heap[j] = j }
    for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i, k) }
    for j in k..<n where better(j, heap[0]) {
        heap[0] = j
        siftDown(0, k)
    }
    // Pop the worst to the end: the array ends best first.
    var size = k
    while size > 1 {
        heap.swapAt(0, size &- 1)
        size &-= 1
        siftDown(0, size)
    }
    for j in 0..<k { values[j] = row[heap[j]]; ids[j] = Int64(heap[j]) }
}

extension UnsafeMutablePointer {
    @inline(__always) func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}

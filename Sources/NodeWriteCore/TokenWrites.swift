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
        try withGainedWrites(model, store, outputs: OutputSpan(out.baseAddress, count: needed, "out")) {
            (writes, b) throws(NodeWriteError) in
            let base = out.baseAddress.unsafelyUnwrapped
            try Kernels.gemm(m: count, n: vocab, k: source.dims.dModel, a: writes, b: b, c: base, cRowStride: vocab,
                             threads: Kernels.threads)
            parallelFor(count, threads: Kernels.threads) { i, _ in
                let row = base + i &* vocab
                var sum = 0.0
                for j in 0..<vocab { sum += Double(row[j]) }
                let mean = Float(sum / Double(vocab))
                for j in 0..<vocab { row[j] -= mean }
            }
        }
    }

    /// Vocabulary entries per product when only the top k are kept (bounds scratch memory).
    static let vocabularyBlock = 4096

    /// The `k` largest (or smallest) entries of each node's token-space write, in order,
    /// ties to the lower token id: values and token ids, each n × k. The (n, n_vocab) writes
    /// are never formed: blocks of the vocabulary go through running selections.
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
        let columns = min(vocab, Self.vocabularyBlock), dModel = source.dims.dModel
        let valueSpan = OutputSpan(values.baseAddress, count: needed, "values")
        let idSpan = OutputSpan(ids.baseAddress, count: needed, "token_ids")
        try valueSpan.ensureDisjoint(from: idSpan)
        try withGainedWrites(model, store, outputs: valueSpan, idSpan) { (writes, b) throws(NodeWriteError) in
            try withScratch(Float.self, count: count &* (columns &+ k), "token-space writes") { (scratch) throws(NodeWriteError) in
              try withScratch(Double.self, count: count, "token-space sums") { (sums) throws(NodeWriteError) in
                try withScratch(Int.self, count: count &* k, "top-k selections") { (heapIds) throws(NodeWriteError) in
                    let block = scratch, heapValues = scratch + count &* columns
                    sums.update(repeating: 0, count: count)
                    var first = 0
                    while first < vocab {
                        let width = min(columns, vocab &- first)
                        try Kernels.gemm(m: count, n: width, k: dModel, a: writes,
                                         b: F32Matrix(base: b.base + first &* b.columnStride, rowStride: b.rowStride,
                                                      columnStride: b.columnStride),
                                         c: block, cRowStride: width, threads: Kernels.threads)
                        parallelFor(count, threads: Kernels.threads) { i, _ in
                            var heap = TopK(values: heapValues + i &* k, ids: heapIds + i &* k, capacity: k, largest: largest,
                                            size: min(first, k))
                            let row = block + i &* width
                            var sum = sums[i]  // the row's sum in vocabulary order, as tokenWrites forms it
                            for j in 0..<width { sum += Double(row[j]); heap.offer(row[j], first &+ j) }
                            sums[i] = sum
                        }
                        first &+= width
                    }
                    for i in 0..<count {
                        let mean = Float(sums[i] / Double(vocab))
                        var heap = TopK(values: heapValues + i &* k, ids: heapIds + i &* k, capacity: k, largest: largest, size: k)
                        heap.drain(values: values.baseAddress.unsafelyUnwrapped + i &* k, ids: ids.baseAddress.unsafelyUnwrapped + i &* k,
                                   minus: mean)
                    }
                }
              }
            }
        }
    }

    /// All nodes validated, and the outputs against every input, then their writes times the
    /// final gain (n × d_model) and the unembedding as a float32 matrix.
    private func withGainedWrites(_ model: Model, _ store: ActivationStore, outputs out: OutputSpan,
                                  _ more: OutputSpan = .none,
                                  _ body: (F32Matrix, F32Matrix) throws(NodeWriteError) -> Void) throws(NodeWriteError) {
        let (u, gain) = try Self.vocabulary(model)
        let vocab = u.shape[1], dModel = source.dims.dModel
        try withResolved(store) { (form, nodes) throws(NodeWriteError) in
            guard !nodes.isEmpty else { return }
            for span in [out, more] {
                try form.ensureDisjoint(span)
                try span.ensureDisjoint(from: u, "the unembedding")
                try span.ensureDisjoint(from: gain, "the final layer norm's gain")
            }
            try withScratch(Float.self, count: nodes.count &* dModel, "gained writes") { (writes) throws(NodeWriteError) in
                try form.writeVectors(nodes, into: writes)
                for r in 0..<nodes.count {
                    for j in 0..<dModel { writes[r &* dModel &+ j] *= gain.value(at: j &* gain.strides[0]) }
                }
                try u.withF32Block(offset: 0, rows: dModel, columns: vocab, rowStride: u.strides[0], columnStride: u.strides[1]) {
                    (b) throws(NodeWriteError) in
                    try body(F32Matrix(base: writes, rowStride: dModel, columnStride: 1), b)
                }
            }
        }
    }
}

/// A running selection of the `capacity` best (value, token id) pairs of one row: better is
/// the larger (or smaller) value, then the lower id; NaN counts as the largest value, as in
/// torch.topk. A heap whose root is the worst kept pair.
struct TopK {
    let values: UnsafeMutablePointer<Float>
    let ids: UnsafeMutablePointer<Int>
    let capacity: Int
    let largest: Bool
    var size: Int

    @inline(__always) func better(_ x: Float, _ a: Int, _ y: Float, _ b: Int) -> Bool {
        if x.isNaN || y.isNaN { return x.isNaN != y.isNaN ? x.isNaN == largest : a < b }
        if x != y { return largest ? x > y : x < y }
        return a < b
    }

    @inline(__always) mutating func offer(_ v: Float, _ id: Int) {
        if size < capacity {
            var i = size
            size &+= 1
            // sift up: the root is the worst
            while i > 0 {
                let parent = (i &- 1) / 2
                guard better(values[parent], ids[parent], v, id) else { break }
                values[i] = values[parent]; ids[i] = ids[parent]
                i = parent
            }
            values[i] = v; ids[i] = id
        } else if better(v, id, values[0], ids[0]) {
            siftDown(v, id, size)
        }
    }

    /// Puts (v, id) at the root and restores the heap of `n` pairs.
    @inline(__always) func siftDown(_ v: Float, _ id: Int, _ n: Int) {
        var i = 0
        while true {
            let l = 2 &* i &+ 1, r = l &+ 1
            var worst = -1
            var wv = v, wi = id
            if l < n, better(wv, wi, values[l], ids[l]) { worst = l; wv = values[l]; wi = ids[l] }
            if r < n, better(wv, wi, values[r], ids[r]) { worst = r }
            if worst < 0 { break }
            values[i] = values[worst]; ids[i] = ids[worst]
            i = worst
        }
        values[i] = v; ids[i] = id
    }

    /// Writes the kept pairs best first (values minus `minus`), emptying the heap.
    mutating func drain(values out: UnsafeMutablePointer<Float>, ids outIds: UnsafeMutablePointer<Int64>, minus: Float) {
        var n = size
        while n > 0 {
            let v = values[0], id = ids[0]
            n &-= 1
            out[n] = v - minus
            outIds[n] = Int64(id)
            if n > 0 { siftDown(values[n], ids[n], n) }
        }
        size = 0
    }
}

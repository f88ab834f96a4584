/// TDB's write-family derived scalars for every node of a layer, contraction-first: each is
/// `s · f` where s is the node's scalar activation and f a factor of its base row b, block
/// B and the direction g (see `LinearForm`):
///
/// - norm: f = ‖b @ B‖, from row norms, per-head Gram matrices B Bᵀ (d_head × d_head), or
///   the decoded rows of active latents only;
/// - projection: f = b · (B g[t]), with B g formed first and only for the rows of g that
///   are not zero (one shared row when g is one (d_model,) vector).
///
/// Nothing of size (T, T, heads, d_head), (T, T, heads, d_model) or (n_latents, d_model) is
/// formed; for attention only k ≤ q is computed (and read) for a causal model, every key otherwise.
package struct DerivedScalarRun {
    package let dst: DerivedScalar
    /// TDB's output shape.
    package let shape: [Int]
    /// The number of output elements.
    package let count: Int
    let input: Input
    let direction: Direction?
    let threads: Int
    /// The output holds zeros already: zero entries need not be written.
    let outputZeroed: Bool
    /// attn.v_out (T, heads, d_head) at the layer, for the per-sequence-token attention DSTs when
    /// the store holds it: z[q, h] is then read instead of summing p · v over keys.
    private(set) var mixedValues: TensorView? = nil

    enum Input {
        case nodes(LayerForm, DerivedScalarSpec.AttentionLayout)
        case layer(TensorView)
    }

    /// Resolves `dst` at `layer` against the model, the store and the direction.
    /// - Throws: what the inputs are missing or get wrong; nothing is computed.
    package init(_ dst: DerivedScalar, model: Model, store: ActivationStore, layer: Int, direction: TensorView?,
                 threads: Int, outputZeroed: Bool = false) throws(NodeWriteError) {
        let spec = dst.spec
        let tokens: Int
        switch spec.subject {
        case .nodes(let type, let layout):
            let form = try NodeSource(model: model, nodeType: type, layer: layer).resolve(store)
            tokens = form.tokens
            let width = form.source.width
            if type == .attentionHead, form.scalars.shape[1] != tokens {
                throw .shapeMismatch("activation attn.qk_probs at layer \(layer): shape \(form.scalars.shapeArray) must be (T, T, n_heads) for \(spec.name)")
            }
            if layout == .flattened, !form.source.causal {
                throw .unsupported("dst \(spec.name): its flattened layout (T(T+1)/2, n_heads) holds the key <= query pairs "
                                   + "only, and the model is not causal (its key > query pairs are nodes too); derive "
                                   + "unflattened_\(spec.name) (T, T, n_heads) instead")
            }
            switch layout {
            case .none: shape = [tokens, width]
            case .unflattened: shape = [tokens, tokens, width]
            case .flattened:
                let (pairs, o) = tokens.multipliedReportingOverflow(by: tokens &+ 1)
                guard !o else { throw .bufferTooSmall("out: no buffer holds T(T+1)/2 × n_heads for T = \(tokens)") }
                shape = [pairs / 2, width]
            case .perSequenceToken: shape = [tokens, width]
            }
            input = .nodes(form, layout)
            if type == .attentionHead, layout == .perSequenceToken, let z = store[.attnVOut, layer] {
                let want = [tokens, model.dims.nHeads, model.dims.dHead]
                guard z.shapeArray == want else {
                    throw .shapeMismatch("activation attn.v_out at layer \(layer): shape \(z.shapeArray) must be (T, n_heads, d_head) = \(want) to match attn.qk_probs (or remove it from the store)")
                }
                mixedValues = z
            }
        case .edge:
            throw .invalidArgument("dst: \(spec.name) is an edge or attribution DST; derive it with nw_derive_node")
        case .layer(let location):
            guard layer >= 0, layer < model.dims.nLayers else {
                throw .indexOutOfRange("layer = \(layer) is out of range for n_layers = \(model.dims.nLayers)")
            }
            let delta = try store.require(location, layer: layer)
            guard delta.shape[1] == model.dims.dModel else {
                throw .shapeMismatch("activation \(location.name) at layer \(layer): shape \(delta.shapeArray) must be (T, d_model = \(model.dims.dModel))")
            }
            tokens = delta.shape[0]
            shape = [tokens, 1]
            input = .layer(delta)
        }
        var total = 1
        for size in shape {
            let (t, o) = total.multipliedReportingOverflow(by: size)
            guard !o else { throw .bufferTooSmall("out: no buffer holds an output of shape \(shape)") }
            total = t
        }
        count = total
        switch (spec.quantity, direction) {
        case (.norm, nil): self.direction = nil
        case (.norm, .some): throw .invalidArgument("direction: \(spec.name) is a norm and takes no direction")
        case (.projection, nil): throw .invalidArgument("direction: \(spec.name) needs a direction (the final residual grad)")
        case (.projection, .some(let view)):
            self.direction = try Direction(view, dModel: model.dims.dModel, tokens: tokens)
        default: throw .invalidArgument("dst: \(spec.name) is not a write-family DST")
        }
        self.dst = dst
        self.threads = max(1, threads)
        self.outputZeroed = outputZeroed
    }

    /// - Throws: `.invalidArgument` when `out` shares memory with an input of the run.
    package func ensureDisjoint(_ out: OutputSpan) throws(NodeWriteError) {
        switch input {
        case .nodes(let form, _): try form.ensureDisjoint(out)
        case .layer(let delta): try out.ensureDisjoint(from: delta, "the layer's residual write (activation resid.delta_*)")
        }
        if let direction { try out.ensureDisjoint(from: direction.view, "the direction") }
        if let mixedValues { try out.ensureDisjoint(from: mixedValues, "activation attn.v_out") }
    }

    /// Writes the output (row-major, `count` floats). On error nothing is written.
    package func derive(into out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        try ensureDisjoint(OutputSpan(out, count: count, "out"))
        switch input {
        case .layer(let delta): try layerWrites(delta, out)
        case .nodes(let form, let layout):
            switch form.source.blocks {
            case .heads(let weight): try attention(form, weight, layout, out)
            case .rows(let w): try nodeFactors(form, .rows(w.view), out)
            case .decodedRows(let decoder, let through): try nodeFactors(form, .decodedRows(decoder.view, through.view), out)
            }
        }
    }

    // MARK: - The whole layer's write

    private func layerWrites(_ delta: TensorView, _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let tokens = delta.shape[0], dModel = delta.shape[1]
        func dot(_ t: Int, _ g: F32Matrix?) -> Float {
            var sum = 0.0
            let offset = delta.offset(t, 0), stride = delta.strides[1]
            for j in 0..<dModel {
                let x = Double(delta.value(at: offset &+ j &* stride))
                sum += x * Double(g.map { $0.base[j] } ?? Float(x))
            }
            return g == nil ? Float(sum.squareRoot()) : Float(sum)
        }
        guard let direction else {
            for t in 0..<tokens { out[t] = dot(t, nil) }
            return
        }
        try direction.withRows { (rowTokens, rows) throws(NodeWriteError) in
            if direction.shared {
                for t in 0..<tokens { out[t] = rowTokens.isEmpty ? 0 : dot(t, rows) }
                return
            }
            if !outputZeroed { out.update(repeating: 0, count: tokens) }
            for (z, t) in rowTokens.enumerated() { out[t] = dot(t, rows.row(z)) }
        }
    }

    // MARK: - Neurons and latents: (T, width)

    /// The blocks of neurons and latents: b = e_j with B = rows, or b = decoder[j] with B = W_out.
    enum SlotBlocks {
        case rows(TensorView)
        case decodedRows(TensorView, TensorView)
    }

    private func nodeFactors(_ form: LayerForm, _ blocks: SlotBlocks, _ out: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let width = form.source.width, tokens = form.tokens
        guard let direction else {
            try withScratch(Float.self, count: width, "write norms") { (f) throws(NodeWriteError) in
                try slotNorms(form, blocks, f)
                scaleByScalars(form, out) { _ in UnsafePointer(f) }
            }
            return
        }
        try direction.withRows { (rowTokens, g) throws(NodeWriteError) in
            if direction.shared {
                try withScratch(Float.self, count: width, "projections") { (f) throws(NodeWriteError) in
                    if rowTokens.isEmpty { f.update(repeating: 0, count: width) } else { try slotProjections(form, blocks, g, rows: 1, f) }
                    scaleByScalars(form, out) { _ in UnsafePointer(f) }
                }
                return
            }
            // The used rows of g are consecutive tokens t0 ..< t0 + n (all of them for a dense g):
            // the projections go straight into those rows of out, then are scaled in place;
            // otherwise (a few scattered rows) through scratch memory.
            let first = rowTokens.first ?? 0
            let consecutive = rowTokens.isEmpty || rowTokens.last! &- first == rowTokens.count &- 1
            // Float32 activations with contiguous rows scale each tile of the product in cache.
            let s = form.scalars
            if consecutive, !rowTokens.isEmpty, s.dtype == .float32, s.strides[1] == 1 {
                let scales = s.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self) + s.offset(first, 0)
                if case .rows(let w) = blocks, !outputZeroed, rowTokens.count < tokens,
                   rowTokens.count <= Kernels.scratchlessRows {
                    try fewRowsAndZeros(form, w, g, rows: first..<(first &+ rowTokens.count), scales: (scales, s.strides[0]), out)
                    return
                }
                try slotProjections(form, blocks, g, rows: rowTokens.count, scales: (scales, s.strides[0]), out + first &* width)
                if !outputZeroed {
                    let used = first..<(first &+ rowTokens.count)
                    parallelFor(tokens, threads: threads) { t, _ in
                        if !used.contains(t) { (out + t &* width).update(repeating: 0, count: width) }
                    }
                }
                return
            }
            try withScratch(Float.self, count: consecutive ? 0 : rowTokens.count &* width, "projections") { (scratch) throws(NodeWriteError) in
                try withScratch(Int.self, count: tokens, "projection rows") { (rowOf) throws(NodeWriteError) in
                    let p = consecutive ? out + first &* width : scratch
                    if !rowTokens.isEmpty { try slotProjections(form, blocks, g, rows: rowTokens.count, p) }
                    for t in 0..<tokens { rowOf[t] = -1 }
                    for (z, t) in rowTokens.enumerated() { rowOf[t] = z }
                    scaleByScalars(form, out) { t in rowOf[t] < 0 ? nil : UnsafePointer(p + rowOf[t] &* width) }
                }
            }
        }
    }

    /// Columns of the product, and rows of zeros, per task of `fewRowsAndZeros`.
    static let fewRowsColumnsPerTask = 256, zeroRowsPerTask = 32

    /// A few used rows of g (TDB's last-row gradient): the scaled projections of `rows`, in
    /// column blocks of one product, and the zeros of every other row of out are one set of
    /// tasks, so that every lane works on both at once (measured: 20 % off the one-row MLP
    /// projection at T = 1024, against the threaded product followed by a threaded zero fill).
    /// At most `Kernels.scratchlessRows` rows, for which a product takes no scratch memory; a
    /// task's error would still reach the caller.
    private func fewRowsAndZeros(_ form: LayerForm, _ w: TensorView, _ g: F32Matrix, rows: Range<Int>,
                                 scales: (UnsafePointer<Float>, rowStride: Int), _ out: UnsafeMutablePointer<Float>)
        throws(NodeWriteError) {
        let width = form.source.width, dModel = form.dModel, tokens = form.tokens
        let columns = Self.fewRowsColumnsPerTask, zeroRows = Self.zeroRowsPerTask
        try w.withF32Block(offset: 0, rows: width, columns: dModel, rowStride: w.strides[0], columnStride: w.strides[1]) {
            (b) throws(NodeWriteError) in
            let bt = b.transposed, productTasks = (width &+ columns &- 1) / columns
            try tryParallelFor(productTasks &+ (tokens &+ zeroRows &- 1) / zeroRows, threads: threads) { (task, _) throws(NodeWriteError) in
                guard task >= productTasks else {
                    let j0 = task &* columns
                    try Kernels.gemm(m: rows.count, n: min(columns, width &- j0), k: dModel, a: g,
                                      b: F32Matrix(base: bt.base + j0 &* bt.columnStride, rowStride: bt.rowStride, columnStride: bt.columnStride),
                                      scales: scales.0 + j0, scalesRowStride: scales.rowStride,
                                      c: out + (rows.lowerBound &* width &+ j0), cRowStride: width)
                    return
                }
                let t0 = (task &- productTasks) &* zeroRows
                for t in t0..<min(tokens, t0 &+ zeroRows) where !rows.contains(t) { (out + t &* width).update(repeating: 0, count: width) }
            }
        }
    }

    /// out[t, j] = s[t, j] · factors(t)[j]; a nil row of factors gives a row of zeros.
    private func scaleByScalars(_ form: LayerForm, _ out: UnsafeMutablePointer<Float>, _ factors: (Int) -> UnsafePointer<Float>?) {
        let s = form.scalars, width = form.source.width
        parallelFor(form.tokens, threads: threads) { t, _ in
            let row = out + t &* width
            if let f = factors(t) {
                scaleRow(row, width, s, offset: s.offset(t, 0), stride: s.strides[1], f)
            } else if !outputZeroed {
                row.update(repeating: 0, count: width)
            }
        }
    }

    /// f[j] = ‖b_j @ B‖ for every slot j (active latents only for decoded rows; 0 elsewhere).
    private func slotNorms(_ form: LayerForm, _ blocks: SlotBlocks, _ f: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let dModel = form.dModel
        switch blocks {
        case .rows(let w):
            for j in 0..<form.source.width { f[j] = rowNorm(w, offset: w.offset(j, 0), stride: w.strides[1], count: dModel) }
        case .decodedRows(let d, let w):
            let width = form.source.width, k = d.shape[1]
            let s = form.scalars
            var active: [Int] = []
            for j in 0..<width where (0..<form.tokens).contains(where: { s.value(at: s.offset($0, j)) != 0 }) { active.append(j) }
            f.update(repeating: 0, count: width)
            let chunk = 64
            try w.withF32Block(offset: 0, rows: k, columns: dModel, rowStride: w.strides[0], columnStride: w.strides[1]) {
                (b) throws(NodeWriteError) in
                try withScratch(Float.self, count: chunk &* (k &+ dModel), "decoded rows") { (x) throws(NodeWriteError) in
                    let c = x + chunk &* k
                    var first = 0
                    while first < active.count {
                        let m = min(chunk, active.count &- first)
                        for r in 0..<m {
                            let offset = d.offset(active[first &+ r], 0)
                            for a in 0..<k { x[r &* k &+ a] = d.value(at: offset &+ a &* d.strides[1]) }
                        }
                        try Kernels.gemm(m: m, n: dModel, k: k, a: F32Matrix(base: x, rowStride: k, columnStride: 1), b: b,
                                         c: c, cRowStride: dModel, threads: threads)
                        for r in 0..<m { f[active[first &+ r]] = rowNorm(c + r &* dModel, count: dModel) }
                        first &+= m
                    }
                }
            }
        }
    }

    /// p[z, j] = b_j · (B g_z) for the `rows` rows of g (row-major rows × width), each scaled by
    /// `scales`[z · rowStride + j] when given (as `scaleRow` does).
    private func slotProjections(_ form: LayerForm, _ blocks: SlotBlocks, _ g: F32Matrix, rows: Int,
                                 scales: (UnsafePointer<Float>, rowStride: Int)? = nil,
                                 _ p: UnsafeMutablePointer<Float>) throws(NodeWriteError) {
        let dModel = form.dModel, width = form.source.width
        switch blocks {
        case .rows(let w):
            try w.withF32Block(offset: 0, rows: width, columns: dModel, rowStride: w.strides[0], columnStride: w.strides[1]) {
                (b) throws(NodeWriteError) in
                try Kernels.gemm(m: rows, n: width, k: dModel, a: g, b: b.transposed, scales: scales?.0, scalesRowStride: scales?.rowStride ?? 0, c: p, cRowStride: width,
                                 threads: threads)
            }
        case .decodedRows(let d, let w):
            let k = d.shape[1]
            try withScratch(Float.self, count: rows &* k, "projections") { (u) throws(NodeWriteError) in
                try w.withF32Block(offset: 0, rows: k, columns: dModel, rowStride: w.strides[0], columnStride: w.strides[1]) {
                    (b) throws(NodeWriteError) in
                    try Kernels.gemm(m: rows, n: k, k: dModel, a: g, b: b.transposed, c: u, cRowStride: k, threads: threads)
                }
                try d.withF32Block(offset: 0, rows: width, columns: k, rowStride: d.strides[0], columnStride: d.strides[1]) {
                    (b) throws(NodeWriteError) in
                    try Kernels.gemm(m: rows, n: width, k: k, a: F32Matrix(base: u, rowStride: k, columnStride: 1),
                                     b: b.transposed, scales: scales?.0, scalesRowStride: scales?.rowStride ?? 0, c: p, cRowStride: width, threads: threads)
                }
            }
        }
    }
}

/// ‖row‖ of a strided row of any dtype, accumulated in float64.
func rowNorm(_ view: TensorView, offset: Int, stride: Int, count: Int) -> Float {
    var sum = 0.0
    for j in 0..<count { let x = Double(view.value(at: offset &+ j &* stride)); sum += x * x }
    return Float(sum.squareRoot())
}

/// ‖row‖ of a contiguous float32 row, accumulated in float64.
func rowNorm(_ row: UnsafePointer<Float>, count: Int) -> Float {
    var sum = 0.0
    for j in 0..<count { let x = Double(row[j]); sum += x * x }
    return Float(sum.squareRoot())
}

extension F32Matrix {
    /// The same memory read as the transposed matrix.
    package var transposed: F32Matrix { F32Matrix(base: base, rowStride: columnStride, columnStride: rowStride) }
}

/// The inputs of the attention members of the write family, as float32 matrices per head:
/// W_O[h] (d_head × d_model), v[:, h, :] (T × d_head), and p read in place.
struct AttentionHeads {
    let form: LayerForm
    let weight: TensorView
    let values: TensorView

    /// Calls `body` with float32 views of W_O and v: in place for float32, converted into
    /// scratch memory otherwise (before any work starts, so nothing fails halfway).
    func withFloat32<R>(_ body: (Float32) throws(NodeWriteError) -> R) throws(NodeWriteError) -> R {
        let dims = form.source.dims, tokens = form.tokens
        let (heads, dHead, dModel) = (dims.nHeads, dims.dHead, dims.dModel)
        return try weight.withF32Heads(heads, dHead, dModel) { (w) throws(NodeWriteError) -> R in
            try values.withF32Heads(tokens, heads, dHead) { (v) throws(NodeWriteError) -> R in
                try body(Float32(tokens: tokens, heads: heads, dHead: dHead, dModel: dModel, causal: form.source.causal,
                                 probs: form.scalars, w: w, v: v))
            }
        }
    }

    struct Float32 {
        let tokens, heads, dHead, dModel: Int
        /// Whether the model is causal: query q reads keys 0 ... q only, else every key.
        let causal: Bool
        /// p: (T, T, heads), any dtype, read in place.
        let probs: TensorView
        /// W_O as (heads, d_head, d_model) and v as (T, heads, d_head): base and strides.
        let w: F32Tensor3
        let v: F32Tensor3

        /// The number of keys query q reads (keys 0 ..< keys(q)).
        @inline(__always) func keys(_ q: Int) -> Int { causal ? q &+ 1 : tokens }

        /// W_O[h]: d_head × d_model.
        func weight(_ h: Int) -> F32Matrix {
            F32Matrix(base: w.base + h &* w.strides.0, rowStride: w.strides.1, columnStride: w.strides.2)
        }

        /// W_O as one (heads · d_head) × d_model matrix, when its strides allow.
        var headRows: F32Matrix? {
            guard dHead == 1 || heads == 1 || w.strides.0 == w.strides.1 &* dHead else { return nil }
            return F32Matrix(base: w.base, rowStride: dHead == 1 ? w.strides.0 : w.strides.1, columnStride: w.strides.2)
        }

        /// v[:, h, :]: T × d_head.
        func values(_ h: Int) -> F32Matrix {
            F32Matrix(base: v.base + h &* v.strides.1, rowStride: v.strides.0, columnStride: v.strides.2)
        }

        /// G = W_O[h] W_O[h]ᵀ (d_head × d_head, contiguous).
        func gram(_ h: Int, into g: UnsafeMutablePointer<Float>) {
            let wh = weight(h)
            gemm(m: dHead, n: dHead, k: dModel, a: wh, b: wh.transposed, c: g, cRowStride: dHead)
        }

        /// sums[q - rows.lowerBound] = Σ_k p[q, k, h] v[k, h] over the keys q reads, for q in rows, in
        /// blocks of queries, each element one FMA chain in key order; `masked` holds
        /// DerivedScalarRun.queryBlock × T floats. Causal: the keys before the block are one product for
        /// the whole block, then each query's chain continues over the block's keys up to itself, so
        /// that no key after a query is read (0 · inf there would be NaN).
        func weightedValues(_ h: Int, rows: Range<Int>, masked: UnsafeMutablePointer<Float>, into sums: UnsafeMutablePointer<Float>) {
            let block = DerivedScalarRun.queryBlock, vh = values(h)
            var q0 = rows.lowerBound
            while q0 < rows.upperBound {
                let q1 = min(rows.upperBound, q0 &+ block), width = causal ? q1 : tokens, shared = causal ? q0 : tokens
                for q in q0..<q1 {
                    let row = masked + (q &- q0) &* width
                    for k in 0..<keys(q) { row[k] = probs.value(at: probs.offset(q, k, h)) }
                }
                let c = sums + (q0 &- rows.lowerBound) &* dHead
                gemm(m: q1 &- q0, n: dHead, k: shared, a: F32Matrix(base: masked, rowStride: width, columnStride: 1),
                     b: vh, c: c, cRowStride: dHead)
                if causal {
                    for q in q0..<q1 {
                        Kernels.gemmContinue(m: 1, n: dHead, k: q &- q0 &+ 1,
                                             a: F32Matrix(base: masked + ((q &- q0) &* width &+ q0), rowStride: width, columnStride: 1),
                                             b: F32Matrix(base: vh.base + q0 &* vh.rowStride, rowStride: vh.rowStride, columnStride: vh.columnStride),
                                             c: c + (q &- q0) &* dHead, cRowStride: dHead)
                    }
                }
                q0 = q1
            }
        }

        /// f[k · heads + h] = ‖v[k, h] @ W_O[h]‖, from the head's Gram matrix G (in `grams`,
        /// d_head² floats per head): yᵀ = G v[:, h]ᵀ (G is symmetric, so yᵀ[c, k] = (v[k] G)[c],
        /// bit for bit), then sqrt(v[k] · y[k]).
        func keyNorms(_ grams: UnsafePointer<Float>, into f: UnsafeMutablePointer<Float>, threads: Int) throws(NodeWriteError) {
            let lanes = laneCount(heads, threads: threads), perLane = tokens &* dHead
            try withScratch(Float.self, count: lanes &* perLane, "key norms") { (scratch) throws(NodeWriteError) in
                parallelFor(heads, threads: threads) { h, lane in
                    let g = grams + h &* dHead &* dHead, yT = scratch + lane &* perLane, vh = values(h)
                    gemm(m: dHead, n: tokens, k: dHead, a: F32Matrix(base: g, rowStride: dHead, columnStride: 1),
                         b: vh.transposed, c: yT, cRowStride: tokens)
                    Kernels.quadNorms(rows: tokens, n: dHead, x: vh, y: F32Matrix(base: yT, rowStride: 1, columnStride: tokens),
                                      out: f + h, outStride: heads)
                }
            }
        }

        /// f[k · heads + h] = v[k, h] · (W_O[h] g) for one shared direction row g.
        func keyProjections(_ g: F32Matrix, into f: UnsafeMutablePointer<Float>, threads: Int) throws(NodeWriteError) {
            try withScratch(Float.self, count: heads &* dHead, "projected direction") { (u) throws(NodeWriteError) in
                parallelFor(heads, threads: threads) { h, _ in
                    let uh = u + h &* dHead
                    gemm(m: dHead, n: 1, k: dModel, a: weight(h), b: F32Matrix(base: g.base, rowStride: g.columnStride, columnStride: 0),
                         c: uh, cRowStride: 1)
                    gemm(m: tokens, n: 1, k: dHead, a: values(h), b: F32Matrix(base: uh, rowStride: 1, columnStride: 0),
                         c: f + h, cRowStride: heads)
                }
            }
        }
    }
}

/// A float32 tensor of three dimensions: base and element strides.
struct F32Tensor3 {
    let base: UnsafePointer<Float>
    let strides: (Int, Int, Int)
}

extension TensorView {
    /// This (a, b, c) view as float32: in place, or converted into contiguous scratch.
    func withF32Heads<R>(_ a: Int, _ b: Int, _ c: Int, _ body: (F32Tensor3) throws(NodeWriteError) -> R) throws(NodeWriteError) -> R {
        if dtype == .float32 {
            let base = self.base.unsafelyUnwrapped.assumingMemoryBound(to: Float.self)
            return try body(F32Tensor3(base: base, strides: (strides[0], strides[1], strides[2])))
        }
        return try withScratch(Float.self, count: a &* b &* c, "a float32 copy of a \(dtype.name) tensor") {
            (copy) throws(NodeWriteError) -> R in
            var n = 0
            for i in 0..<a { for j in 0..<b { for k in 0..<c { copy[n] = value(at: offset(i, j, k)); n &+= 1 } } }
            return try body(F32Tensor3(base: UnsafePointer(copy), strides: (b &* c, c, 1)))
        }
    }
}

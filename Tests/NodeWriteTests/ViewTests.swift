import CNodeWrite
import Testing

/// The same weights in other memory forms: strided views of the checkpoint's
/// matrices, float16, bfloat16 and float64.
@Suite("Weight views and dtypes")
struct ViewTests {
    static let cases = Fixture.shared.cases.filter { $0.error == nil && $0.autoencoders != "single" }

    /// All fixture outputs for a weight form, keyed by case id.
    static func outputs(_ form: Setup.WeightForm) -> [String: [Float]] {
        let setups = ["none": Setup(autoencoders: "none", weights: form), "multi": Setup(autoencoders: "multi", weights: form)]
        var out: [String: [Float]] = [:]
        for c in cases {
            let setup = setups[c.autoencoders]!
            var node = nodeIndex(nodeType(c.node_type), layer: c.layer, c.tensor_indices)
            var values = [Float](repeating: .nan, count: 7 * 48)
            #expect(nw_node_write(setup.model, setup.store, &node, &values, values.count) == 0, "\(c.id): \(lastError)")
            out[c.id] = values
        }
        return out
    }

    static let canonical = outputs(.canonical)

    @Test("checkpoint matrices viewed by strides give the same bits")
    func checkpointStrides() {
        // out_proj.weight (d_model, heads·d_head) as (heads, d_head, d_model), strides (16, 1, 48);
        // out_layer.weight (d_model, d_ff) as (d_ff, d_model), strides (1, 192). Same values, same
        // float32 operations in the same order: identical results.
        #expect(Self.outputs(.checkpoint) == Self.canonical)
    }

    @Test("float64 weights give the same bits")
    func float64() {
        // Every float32 is exactly a float64 and converts back exactly.
        #expect(Self.outputs(.float64) == Self.canonical)
    }

    @Test("half-precision weights are read exactly", arguments: [
        (Setup.WeightForm.float16, Setup.WeightForm.float16AsFloat32),
        (Setup.WeightForm.bfloat16, Setup.WeightForm.bfloat16AsFloat32),
    ])
    func halfPrecisionExact(_ forms: (Setup.WeightForm, Setup.WeightForm)) {
        // A float16/bfloat16 view computes exactly what float32 weights holding the
        // same (rounded) values compute: the conversion is exact, the arithmetic float32.
        #expect(Self.outputs(forms.0) == Self.outputs(forms.1))
    }

    @Test("half-precision weights stay near the original", arguments: [
        (Setup.WeightForm.float16, Float(2e-3)), (Setup.WeightForm.bfloat16, Float(1.6e-2)),
    ])
    func halfPrecisionTolerance(_ arg: (Setup.WeightForm, Float)) {
        // Rounding each weight costs at most 2^-11 (float16) or 2^-8 (bfloat16) of it; the
        // tolerance is 4× that unit roundoff times max(1, max|original|), leaving room for
        // sums whose terms are larger than the result.
        let (form, tolerance) = arg
        let outputs = Self.outputs(form)
        for c in Self.cases {
            let expected = Fixture.shared[c.expected!].values
            let scale = max(1, expected.map(abs).max()!)
            let diff = zip(outputs[c.id]!, expected).map { abs($0 - $1) }.max()!
            #expect(diff <= tolerance * scale, "\(c.id): \(diff)")
        }
    }

    @Test("activations as float64 and with a negative stride")
    func activationForms() throws {
        // attn.v of layer 1 stored reversed along the key axis, read with a negative stride,
        // and as float64: the attention cases of layer 1 give the same bits.
        let f = Fixture.shared
        let v = f["activations.1.attn.v"]  // (7, 3, 16)
        let rows = 3 * 16
        var reversed = [Float]()
        for k in (0..<7).reversed() { reversed += v.values[k * rows..<(k + 1) * rows] }
        for form in ["reversed", "float64"] {
            let setup = Setup(autoencoders: "none")
            let buffer: Buffer
            if form == "reversed" {
                // Point at the last block (key 0) and step backwards.
                let b = setup.keep(Buffer(reversed, shape: [7, 3, 16], dtype: 0))
                buffer = b
                let shape: [Int64] = [7, 3, 16], strides: [Int64] = [-48, 16, 1]
                let status = shape.withUnsafeBufferPointer { shape in
                    strides.withUnsafeBufferPointer { strides in
                        var view = nw_tensor_view(data: b.raw + 6 * rows * 4, dtype: 0, ndim: 3,
                                                  shape: shape.baseAddress, strides: strides.baseAddress)
                        return nw_store_put(setup.store, 2, 1, &view)
                    }
                }
                #expect(status == 0, "\(lastError)")
            } else {
                buffer = setup.keep(Buffer(v.values.map(Double.init), shape: v.shape, dtype: 3))
                #expect(buffer.withView { nw_store_put(setup.store, 2, 1, $0) } == 0)
            }
            for c in Self.cases where c.node_type == "attention_head" && c.layer == 1 {
                var node = nodeIndex(1, layer: 1, c.tensor_indices)
                var out = [Float](repeating: .nan, count: 7 * 48)
                #expect(nw_node_write(setup.model, setup.store, &node, &out, out.count) == 0)
                #expect(out == Self.canonical[c.id], "\(form) \(c.id)")
            }
        }
    }
}

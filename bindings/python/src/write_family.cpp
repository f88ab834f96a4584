// TDB's write family: nodewrite.derive, a derived scalar for every node of one layer in one
// library call, also with out= (binding, docstrings, registration).
#include "args.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "outputs.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

py::object derive(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("derive", args, kwargs,
                        {{"model", true}, {"store", true}, {"dst", true}, {"layer", true},
                         {"direction", false}, {"out", false}}, 4);
    Model &m = model_arg(a[0]);
    Store &s = store_arg(a[1]);
    int32_t dst = dst_arg(a[2]);
    int32_t layer = to_layer(a[3]);
    HeldPtr dir;
    nw_tensor_view dir_view{};
    const nw_tensor_view *dirp = nullptr;
    if (a[4] && !a[4].is_none()) {
        dir = hold_tensor(a[4], "direction");
        dir_view = dir->view();
        dirp = &dir_view;
    }
    HeldPtr out_held;
    if (a[5] && !a[5].is_none()) out_held = hold_out(a[5]);
    const DstFacts &f = dst_facts(dst);
    return sized_call(
        m, s, [&] { return predicted_shape(m, s, f.dims, f.activations, layer); },
        [&](float *p, size_t len, uint32_t flags, Reported *r) {
            return nw_derive(m.model, s.store, dst, layer, dirp, flags, p, len, r->shape, &r->ndim);
        },
        /*zeroable=*/!out_held, out_held, a[5]);
}

}  // namespace

void init_write_family(py::module_ &mod) {
    mod.def("derive", &derive, R"doc(derive(model: Model, store: ActivationStore, dst: str, layer: int, *, direction: numpy.ndarray | torch.Tensor | None = None, out: numpy.ndarray | torch.Tensor | None = None) -> numpy.ndarray | torch.Tensor

One of TDB's write-family derived scalars for every node of one layer, in TDB's shape.

dst: TDB's DerivedScalarType value (see nodewrite.DSTS and nodewrite.dst_info): "mlp_write_norm" (T, d_ff),
"unflattened_attn_write_to_final_residual_grad" (T, T, n_heads), "attn_write_norm"
(T(T+1)/2, n_heads), ..., "mlp_layer_write_norm" (T, 1). Any other string is a
NodeWriteValueError (a ValueError) listing the supported ones.
direction: for the "..._to_final_residual_grad" values (required there, refused for the
norms): a (T, d_model) array (row t for writes landing on token t; TDB's final residual
grad) or one (d_model,) vector for every token; numpy or CPU torch, any float dtype and
strides, read in place. Rows that are all zero cost nothing.
out: optional C-contiguous writable float32 array of the output's shape, written in place
and returned. Reads the layer's activations (mlp.post_act; attn.qk_probs and attn.v; the
autoencoder's online_* latents; resid.delta_mlp / resid.delta_attn) and the weights.
One library call (nw_derive). Releases the GIL; uses get_num_threads() threads;
bit-identical for every thread count.
)doc");
}

}  // namespace nwpy

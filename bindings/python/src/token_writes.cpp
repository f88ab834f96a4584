// Token writes: nodewrite.token_writes (a node set's writes in token space) and
// top_token_writes (the top k per node, as TopTokenWrites(values, token_ids)), one library call
// each (binding, docstrings, registration).
#include "args.hpp"
#include "indices.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "outputs.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

PyObject *top_token_writes_type = nullptr;  // the TopTokenWrites named tuple, made at import

int64_t vocab_of(const Model &m) {
    if (m.n_vocab <= 0)
        fail(NW_ERR_MISSING_INPUT,
             "weight unembedding is not set; set it with model.set_weight(\"unembedding\", None, w) "
             "(d_model, n_vocab), and \"layer_norm_gain.final\" (d_model,)");
    return m.n_vocab;
}

py::object top_k_call(NodeSetCall &call, py::handle k_obj, bool largest) {
    const Indices &ix = call.ix;
    int64_t n_vocab = vocab_of(call.m);
    int64_t top_k = to_int(k_obj, "k", INT64_MIN, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
    if (top_k < 1 || top_k > n_vocab)
        fail(NW_ERR_INVALID_ARGUMENT, "k: " + std::to_string(top_k) + " is outside 1 .. n_vocab = " +
                                          std::to_string(n_vocab));
    int64_t n = static_cast<int64_t>(ix.n);
    py::array_t<float> values = new_output({n, top_k});
    py::array_t<int64_t> ids = new_output_i64({n, top_k});
    static float no_float = 0;
    static int64_t no_id = 0;
    float *pv = ix.n ? values.mutable_data() : &no_float;
    int64_t *pi = ix.n ? ids.mutable_data() : &no_id;
    size_t cap = ix.n * static_cast<size_t>(top_k);
    call.run([&] {
        return nw_token_writes_top_k(call.m.model, call.s.store, call.node_type, call.layer, ix.ptr(), ix.n, ix.k, top_k,
                                     largest ? 1 : 0, pv, pi, cap);
    });
    PyObject *r = PyObject_CallFunctionObjArgs(top_token_writes_type, values.ptr(), ids.ptr(), nullptr);
    if (r == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(r);
}

py::object token_writes(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("token_writes", args, kwargs,
                        {{"model", true}, {"store", true}, {"node_type", true}, {"layer", true},
                         {"indices", true}, {"top_k", false}, {"largest", false}}, 5);
    NodeSetCall call(a);
    const Indices &ix = call.ix;
    bool has_k = a[5] && !a[5].is_none();
    bool largest = a[6] ? to_bool(a[6], "largest") : true;
    if (has_k) {
        if (PyErr_WarnEx(PyExc_DeprecationWarning,
                         "token_writes(..., top_k=k) is deprecated: call top_token_writes(model, store, "
                         "node_type, layer, indices, k) (it returns TopTokenWrites(values, token_ids))", 1) != 0)
            throw py::error_already_set();
        return top_k_call(call, a[5], largest);
    }
    int64_t n_vocab = vocab_of(call.m);
    py::array_t<float> out = new_output({static_cast<int64_t>(ix.n), n_vocab});
    static float no_float = 0;
    float *p = ix.n ? out.mutable_data() : &no_float;
    size_t len = ix.n * static_cast<size_t>(n_vocab);
    call.run([&] {
        return nw_token_writes(call.m.model, call.s.store, call.node_type, call.layer, ix.ptr(), ix.n, ix.k, p, len);
    });
    return std::move(out);
}

py::object top_token_writes(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("top_token_writes", args, kwargs,
                        {{"model", true}, {"store", true}, {"node_type", true}, {"layer", true},
                         {"indices", true}, {"k", true}, {"largest", false}}, 6);
    NodeSetCall call(a);
    bool largest = a[6] ? to_bool(a[6], "largest") : true;
    return top_k_call(call, a[5], largest);
}

}  // namespace

void init_token_writes(py::module_ &mod) {
    py::object namedtuple = py::module_::import("collections").attr("namedtuple");
    py::object tt = namedtuple("TopTokenWrites", py::make_tuple("values", "token_ids"),
                               py::arg("module") = "nodewrite");
    tt.attr("__doc__") = "TopTokenWrites(values, token_ids): the k largest (or smallest) token writes "
                         "per node, values float32 (n, k) and token_ids int64 (n, k), best first.";
    top_token_writes_type = tt.release().ptr();
    mod.attr("TopTokenWrites") = py::handle(top_token_writes_type);

    mod.def("token_writes", &token_writes, R"doc(token_writes(model: Model, store: ActivationStore, node_type: str, layer: int, indices: numpy.ndarray | torch.Tensor | Sequence[Sequence[int]]) -> numpy.ndarray

Token-space writes of a node set (TDB's TokenWriteConverter): row i is u - mean(u),
u = w_i @ (unembedding * layer_norm_gain.final[:, None]), w_i the write vector of node i.
Needs model.set_weight("unembedding", None, W_U) (d_model, n_vocab) and
model.set_weight("layer_norm_gain.final", None, g) (d_model,).

indices: as in node_writes. Returns float32 (n, n_vocab). (top_k=k is deprecated: it returns
top_token_writes(...)'s TopTokenWrites, with a DeprecationWarning.)
)doc");
    mod.def("top_token_writes", &top_token_writes, R"doc(top_token_writes(model: Model, store: ActivationStore, node_type: str, layer: int, indices: numpy.ndarray | torch.Tensor | Sequence[Sequence[int]], k: int, *, largest: bool = True) -> TopTokenWrites

The k largest token writes per node (largest=False: the smallest), without forming the
(n, n_vocab) array: TopTokenWrites(values float32 (n, k), token_ids int64 (n, k)), best first,
ties to the lower token id. 1 <= k <= n_vocab. Needs the weights token_writes needs.
)doc");
}

}  // namespace nwpy

// Node sets: nodewrite.node_writes, the write vectors of n nodes of one type at one layer in
// one library call (binding, docstrings, registration). Arguments are read (running whatever
// Python code that takes) before the model/store locks are taken; see objects.hpp.
#include "args.hpp"
#include "indices.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "outputs.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

// token_rows=: a writable int64 (n,) numpy array (C-contiguous), filled in place.
int64_t *token_rows_arg(py::handle obj, size_t n, Py_buffer &buf) {
    if (PyObject_GetBuffer(obj.ptr(), &buf, PyBUF_STRIDES | PyBUF_FORMAT | PyBUF_WRITABLE) != 0) {
        std::string text = take_python_error();
        fail(NW_ERR_INVALID_ARGUMENT, "token_rows: expected a writable int64 numpy array (n,), got " +
                                          type_name(obj) + " (" + text + ")");
    }
    std::string fmt = buf.format ? buf.format : "B";
    bool is_i64 = buf.itemsize == 8 && (fmt == "q" || fmt == "l" || fmt == "<q" || fmt == "<l" ||
                                        fmt == "=q" || fmt == "@q" || fmt == "@l" || fmt == "=l");
    if (!is_i64) fail(NW_ERR_UNSUPPORTED_DTYPE, "token_rows: element type '" + fmt + "', expected int64");
    if (buf.ndim != 1 || buf.shape == nullptr || buf.shape[0] != static_cast<Py_ssize_t>(n))
        fail(NW_ERR_SHAPE_MISMATCH, "token_rows: expected shape (" + std::to_string(n) + ",), one row per node");
    if (n > 1 && buf.strides != nullptr && buf.strides[0] != 8)
        fail(NW_ERR_INVALID_ARGUMENT, "token_rows: not contiguous; pass a C-contiguous int64 array");
    return static_cast<int64_t *>(buf.buf);
}

struct BufferGuard {
    Py_buffer buf{};
    bool held = false;
    ~BufferGuard() {
        if (held) PyBuffer_Release(&buf);
    }
};

py::object node_writes(const py::args &args, const py::kwargs &kwargs) {
    auto a = parse_args("node_writes", args, kwargs,
                        {{"model", true}, {"store", true}, {"node_type", true}, {"layer", true},
                         {"indices", true}, {"out", false}, {"token_rows", false}}, 5);
    NodeSetCall call(a);
    const Indices &ix = call.ix;
    std::vector<int64_t> shape{static_cast<int64_t>(ix.n), call.m.dims.d_model};
    HeldPtr out_held;
    py::object result;
    float *p = nullptr;
    if (a[5] && !a[5].is_none()) {
        out_held = hold_out(a[5]);
        check_out_shape(*out_held, shape);
        p = out_ptr(*out_held);
        result = a[5];
    } else {
        py::array_t<float> out = new_output(shape);
        p = out.mutable_data();
        result = std::move(out);
    }
    BufferGuard rows;
    int64_t *r = nullptr;
    if (a[6] && !a[6].is_none()) {
        r = token_rows_arg(a[6], ix.n, rows.buf);
        rows.held = true;
    }
    static float no_float = 0;
    static int64_t no_row = 0;
    if (p == nullptr) p = &no_float;
    if (r == nullptr && rows.held) r = &no_row;
    size_t len = ix.n * static_cast<size_t>(call.m.dims.d_model);
    call.run([&] {
        return nw_node_writes(call.m.model, call.s.store, call.node_type, call.layer, ix.ptr(), ix.n, ix.k, p, len, r);
    });
    if (out_held) mark_written(result);
    return result;
}

}  // namespace

void init_node_sets(py::module_ &mod) {
    mod.def("node_writes", &node_writes, R"doc(node_writes(model: Model, store: ActivationStore, node_type: str, layer: int, indices: numpy.ndarray | torch.Tensor | Sequence[Sequence[int]], *, out: numpy.ndarray | torch.Tensor | None = None, token_rows: numpy.ndarray | None = None) -> numpy.ndarray | torch.Tensor

Write vectors of a node set: n nodes of one node type at one layer, in one call.

indices: an (n, k) integer array in TDB's index order for node_type (k = 2, or 3 for
"attention_head": (query token, key token, head)); numpy int64/int32 (any integer dtype),
a CPU torch integer tensor, or a nested list. Negative indices count from the end. A
float or bool array is a NodeWriteValueError (the indices are copied, with the GIL held, so another
thread writing into them cannot race the library).
out: optional C-contiguous, writable float32 (n, d_model) numpy array or CPU torch tensor,
written in place and returned. Without it, a new float32 numpy array (n, d_model).
token_rows: optional writable int64 (n,) numpy array, filled with the token row each write
lands on (the query token for attention).

Row i is the write vector of node i (bit-identical to node_write's row). Every index is
validated before anything is written: on any error (NodeWriteIndexError for an index out of
range anywhere, NodeWriteValueError for a wrong k / dtype / out) out is untouched. An empty
set is valid. Releases the GIL; uses get_num_threads() threads.
)doc");
}

}  // namespace nwpy

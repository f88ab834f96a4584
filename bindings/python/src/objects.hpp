// The objects behind Model, ActivationStore and NodeWriteDeriver, the checks every method
// starts with, and the one block that releases the GIL around a library call.
//
// Locking (so that no sequence of Python calls, from any number of threads, can make the
// library read freed or changing memory):
// - Writers (Model.set_*, ActivationStore.put/remove/clear) hold the GIL for their whole
//   duration, run no Python code while they hold the object's mutex (exclusively), and drop
//   the objects they replace only after unlocking it.
// - Readers (derive, node_write, node_write_vectors, deriver creation) take the mutexes of
//   everything the C call reads (model, then store) shared, *with the GIL held*, so nothing a
//   reader looked at can change before the call; they run no Python code while holding them,
//   then release the GIL for the C call and unlock before taking the GIL back (ReadLocks::run).
// - So a thread never waits for the GIL while holding a mutex, and a writer waiting for a
//   mutex (holding the GIL) only waits for readers that need neither the GIL nor anything else.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <typeinfo>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "nodewrite.h"
#include "views.hpp"

namespace py = pybind11;

namespace nwpy __attribute__((visibility("hidden"))) {

// Slots of a model that hold a borrowed Python object: (kind, enum, layer), kind 0 = weight
// (enum nw_weight), 1 = autoencoder (enum nw_node_type).
using Slot = std::tuple<int, int32_t, int32_t>;

// A model. What it holds (weights, autoencoders, their dtypes and shapes) is the library's to
// tell (Model.weights(), Model.autoencoders()); the binding keeps only the Python objects the
// library borrows, so that they live as long as it reads them, and two figures it needs to size
// outputs without a library call: the dimensions and the unembedding's width (read from the
// library after every change of the model).
struct Model {
    nw_model *model = nullptr;
    nw_model_dims dims{};
    int64_t n_vocab = 0;
    bool causal = true;  // as the library was told at creation (Model(causal=)); never changed after
    mutable std::shared_mutex mu;
    std::map<Slot, HeldPtr> borrowed;
    // Copies of the encoder, latent bias and pre bias of an autoencoder set with copy=True (slot
    // kinds 2, 3, 4 as in borrowed): the library has no export to read an encoder back, so the
    // binding keeps what it was given, for pickling (nodewrite/pickling.py).
    std::map<Slot, HeldPtr> encoder_copies;
    // The checkpoint file the weights were loaded from (Model.from_safetensors), if any.
    std::string source;
    // Writes begun on the model (set_weight, set_autoencoder, load_autoencoder,
    // remove_autoencoder; a failed one counts too): a model pickled by its file path must hold
    // what the file gave it (nodewrite/pickling.py compares this with its value at load).
    uint64_t writes = 0;

    ~Model() { nw_model_destroy(model); }

    std::vector<HeldPtr> borrowed_objects() const {
        std::vector<HeldPtr> v;
        for (const auto &kv : borrowed)
            if (kv.second) v.push_back(kv.second);
        return v;
    }
};

struct Store {
    nw_store *store = nullptr;
    mutable std::shared_mutex mu;
    std::map<std::pair<int32_t, int32_t>, HeldPtr> entries;  // the objects the library borrows
    std::map<std::pair<int32_t, int32_t>, HeldPtr> backward;  // the same for the backward pass (gradients)
    // The batch element the entries put with batch= read (one per store), -1 when none; and how
    // many entries were put so.
    int64_t batch = -1;
    size_t batched = 0;

    ~Store() { nw_store_destroy(store); }
};

struct Deriver {
    nw_deriver *deriver = nullptr;
    py::object model_obj;
    py::object node_obj;
    nw_node_index node{};       // as passed to the library (its type and layer size the output)
    std::vector<HeldPtr> keep;  // borrowed weights the deriver captured
    int64_t d_model = 0;
    py::tuple requirements;     // immutable: callers cannot change what the deriver reports

    ~Deriver() { nw_deriver_destroy(deriver); }
};

// `self` of a method: an initialised instance of T (or of a Python subclass). Objects made
// with T.__new__(T) without __init__ are refused here, before anything reads them.
template <class T>
T &self_of(py::handle self, const char *cls) {
    const py::detail::type_info *ti = py::detail::get_type_info(typeid(T));
    if (ti == nullptr || !PyObject_TypeCheck(self.ptr(), ti->type))
        fail(NW_ERR_INVALID_ARGUMENT,
             std::string("expected a nodewrite.") + cls + ", got " + type_name(self));
    auto *inst = reinterpret_cast<py::detail::instance *>(self.ptr());
    py::detail::value_and_holder vh = inst->get_value_and_holder(ti, false);
    if (!vh || !vh.holder_constructed() || vh.value_ptr() == nullptr)
        fail(NW_ERR_INVALID_ARGUMENT,
             std::string("this nodewrite.") + cls + " is not initialised (made with " + cls +
                 ".__new__ without __init__); create it with nodewrite." + cls + "(...)");
    return *vh.value_ptr<T>();
}

// Registers __init__(self, *args, **kwargs) that builds the object with make(args, kwargs)
// (the binding parses the argument list itself: Python's TypeError wording). A second __init__
// on an initialised object is ignored by pybind11's dispatcher before this runs (a no-op, the
// object unchanged); the holder check is a second guard.
template <class T, class F>
void def_init(py::class_<T> &cls, F make, const char *cls_name, const char *doc) {
    cls.def(
        "__init__",
        [make, cls_name](py::detail::value_and_holder &v_h, const py::args &args,
                         const py::kwargs &kwargs) {
            if (v_h.holder_constructed())
                fail(NW_ERR_INVALID_ARGUMENT,
                     std::string("this nodewrite.") + cls_name +
                         " is already initialised; __init__ runs once (create a new object)");
            std::unique_ptr<T> p = make(args, kwargs);
            py::detail::initimpl::construct<py::class_<T>>(v_h, std::move(p), false);
        },
        py::detail::is_new_style_constructor(), doc);
}

// A `model` / `store` argument of a function: an initialised nodewrite.Model /
// ActivationStore, or a NodeWriteValueError naming the argument.
Model &model_arg(py::handle obj);
Store &store_arg(py::handle obj);

// Shared locks taken with the GIL held; run() releases the GIL around the C call only and
// unlocks before taking the GIL back. The only place the binding releases the GIL.
class ReadLocks {
  public:
    void add(const std::shared_mutex &mu) {
        locks_.emplace_back(const_cast<std::shared_mutex &>(mu));
    }
    // Runs c_call() without the GIL; on failure, *message is the library's message of this
    // thread (captured before anything else runs on it).
    template <class F>
    nw_status run(F &&c_call, std::string *message) {
        nw_status st;
        {
            py::gil_scoped_release nogil;
            st = c_call();
            if (st != NW_OK) *message = nw_last_error_message();
            locks_.clear();
        }
        return st;
    }

  private:
    std::vector<std::shared_lock<std::shared_mutex>> locks_;
};

// The shape of a stored activation, or an empty vector when it is not in the store (GIL held).
std::vector<int64_t> stored_shape(const Store &s, int32_t activation, int32_t layer);

// "(2, 3)"
std::string shape_text(const std::vector<int64_t> &shape);

// Before a call reads them (GIL held, under the locks): every borrowed object it may read must
// still be where it was handed over (NodeWriteStaleInputError otherwise), and, for a model that
// is not causal, an attn.qk_probs entry whose T equals n_heads must have been put with layout=
// (the shape cannot tell (head, q, k) from (q, k, head); NodeWriteValueError).
// check_reads: the store's entries of `activations` at `layer`, the model's borrowed objects at
// `layer` and of no layer. check_everything: every entry and borrowed object (node_write_vectors).
void check_reads(const Model &m, const Store &s, const std::vector<int32_t> &activations, int32_t layer);
void check_everything(const Model &m, const Store &s);
void check_held(const std::vector<HeldPtr> &held);

void init_constants(py::module_ &m);
void init_model(py::module_ &m);
void init_checkpoints(py::module_ &m);
void init_store(py::module_ &m);
void init_deriver(py::module_ &m);
void init_node_writes(py::module_ &m);
void init_node_sets(py::module_ &m);
void init_write_family(py::module_ &m);
void init_token_writes(py::module_ &m);
void init_threads(py::module_ &m);
void init_outputs(py::module_ &m);
void init_pickling(py::module_ &m);

}  // namespace nwpy

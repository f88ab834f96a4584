// nodewrite._core: a thin pybind11 layer over the public C header include/nodewrite.h.
//
// One file per area, each holding its classes' binding, docstrings and registration
// (init_<area>, as MLX's python/src/*.cpp do):
//   info.cpp          the library's facts (nw_*_info_get), read once here; name -> enum lookups
//   constants.cpp     versions, status names, the tables' names
//   model.cpp         Model (weights, autoencoders, what the library holds)
//   checkpoints.cpp   Model.from_safetensors, Model.load_autoencoder
//   store.cpp         ActivationStore (layouts.*: put(..., layout=, batch=))
//   deriver.cpp       NodeWriteDeriver
//   node_writes.cpp   node_write, node_write_vectors, node_write_to_direction
//   node_sets.cpp     node_writes (indices.*: the (n, k) index arrays)
//   write_family.cpp  derive
//   token_writes.cpp  token_writes, top_token_writes
//   threads.cpp       set_num_threads / get_num_threads, thread_call_count
//   outputs.*         result arrays, out=, the one sized-output protocol (sized_call)
//   pickling.cpp      what a Model / ActivationStore holds, for nodewrite/pickling.py
// and the shared machinery:
//   errors.*       NwFailure, the one translator to nodewrite.errors
//   args.*         the argument list, integers, layers, names, bools, node indices
//   dlpack.hpp     the DLPack ABI structs
//   views.*        held tensors: buffer protocol / DLPack -> nw_tensor_view, keep-alive
//   objects.*      the C++ objects, self checks, ReadLocks (the one GIL-release block)
//
// Rules the binding keeps (see shared CONVENTIONS, "The Python binding" and "The Python
// boundary under attack"):
// - It calls only functions declared in nodewrite.h.
// - Inputs are never copied or cast; flags kept outside memory are refused.
// - An out= array is writable memory by its producer's account (buffer flags, DLPack 1.x flags,
//   copy=False); a torch tensor written into has its version counter advanced (views.hpp).
// - Nothing is initialised lazily on a path that releases the GIL: numpy's C API and every
//   type the binding checks against are set up here, at import.
// - Locking: see objects.hpp.
// - Signatures: each docstring starts with the Python signature (real types); pybind11's
//   generated ones would say `object` for arguments the binding reads itself.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "args.hpp"
#include "errors.hpp"
#include "indices.hpp"
#include "info.hpp"
#include "objects.hpp"
#include "views.hpp"

namespace py = pybind11;
using namespace nwpy;

PYBIND11_MODULE(_core, mod) {
    mod.doc() = "nodewrite._core: pybind11 layer over the C ABI of libnodewrite (nodewrite.h). "
                "Use the nodewrite package, not this module.";
    // numpy's C API (pybind11 looks it up once, importing numpy.core.multiarray), now, with
    // the import lock and the GIL held by this thread alone: a first call from several
    // threads at once would otherwise race to do it while releasing the GIL.
    py::detail::npy_api::get();
    (void)py::dtype::of<float>();
    (void)py::dtype::of<int64_t>();
    init_arg_types();
    init_view_types();
    init_index_types();

    py::options options;
    options.disable_function_signatures();
    register_error_translator(mod);
    init_info(mod);  // first: every name argument is looked up in its tables
    init_constants(mod);
    init_model(mod);
    init_store(mod);
    init_deriver(mod);
    init_node_writes(mod);
    init_node_sets(mod);
    init_write_family(mod);
    init_token_writes(mod);
    init_threads(mod);
    init_outputs(mod);
    init_pickling(mod);
}

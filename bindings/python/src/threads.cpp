// Threads: nodewrite.set_num_threads / get_num_threads (the library's pool, process-wide) and
// the per-thread library call counter (binding, docstrings, registration).
#include <climits>

#include "args.hpp"
#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

void init_threads(py::module_ &mod) {
    mod.def("set_num_threads", [](py::handle n) {
        int64_t v = to_int(n, "n", INT32_MIN, INT32_MAX, NW_ERR_INVALID_ARGUMENT);
        check(nw_set_num_threads(static_cast<int32_t>(v)));
    }, R"doc(set_num_threads(n: int) -> None

Threads used by node sets and the layer-wide derived scalars (process-wide). n >= 1 sets it;
0 restores the default (NODEWRITE_NUM_THREADS, else the CPUs this process may use).
Results do not depend on it.
)doc");
    mod.def("get_num_threads", [] { return nw_get_num_threads(); },
            "get_num_threads() -> int\n\nThe number of threads in use (>= 1).");
    mod.def("thread_call_count", [] { return nw_thread_call_count(); },
            "thread_call_count() -> int\n\nnw_thread_call_count(): the number of library calls made so "
            "far on the calling thread (this one excepted); a diagnostic for the one-call-per-operation "
            "promise.");
}

}  // namespace nwpy

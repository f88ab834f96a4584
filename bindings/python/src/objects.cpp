// Helpers shared by the objects' files: see objects.hpp.
#include "objects.hpp"

#include <sys/mman.h>

#include <cstdlib>

#include <climits>

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {
// Zeroed outputs of at least this size are anonymous mappings (see new_output).
constexpr size_t kMappedOutputBytes = 256 * 1024;
struct Mapping {
    void *memory;
    size_t bytes;
};
}  // namespace

Model &model_arg(py::handle obj) {
    if (obj.is_none()) fail(NW_ERR_INVALID_ARGUMENT, "model: expected a nodewrite.Model, got None");
    try {
        return self_of<Model>(obj, "Model");
    } catch (NwFailure &f) {
        f.message = "model: " + f.message;
        throw;
    }
}

Store &store_arg(py::handle obj) {
    if (obj.is_none())
        fail(NW_ERR_INVALID_ARGUMENT, "store: expected a nodewrite.ActivationStore, got None");
    try {
        return self_of<Store>(obj, "ActivationStore");
    } catch (NwFailure &f) {
        f.message = "store: " + f.message;
        throw;
    }
}

py::array_t<float> new_output(const std::vector<int64_t> &shape, bool zeroed) {
    std::string text = "(";
    int64_t count = 1;
    bool too_large = false;
    for (size_t i = 0; i < shape.size(); ++i) {
        text += (i ? ", " : "") + std::to_string(shape[i]);
        if (shape[i] < 0) too_large = true;
        else if (shape[i] > 0 && count > (PY_SSIZE_T_MAX / 4) / shape[i]) too_large = true;
        else count *= shape[i];
    }
    text += shape.size() == 1 ? ",)" : ")";
    if (too_large) fail(NW_ERR_OUT_OF_MEMORY, "an output of shape " + text + " is too large");
    try {
        std::vector<py::ssize_t> s(shape.begin(), shape.end());
        if (!zeroed) {
            // 64-byte aligned (numpy's own large arrays start 16 bytes into a cache line, which
            // costs the library's vector stores a split line each).
            void *memory = nullptr;
            if (posix_memalign(&memory, 64, static_cast<size_t>(count > 0 ? count : 1) * sizeof(float)) != 0)
                fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape " + text);
            py::capsule owner(memory, [](void *p) { std::free(p); });
            return py::array_t<float>(s, static_cast<float *>(memory), owner);
        }
        // Zero memory that the library need not write (NW_OUT_ZEROED), allocated here without
        // the GIL ever being released (numpy.zeros releases it, and callers hold the model and
        // store locks). Large outputs come from anonymous mappings, whose zero pages the system
        // provides on first touch: pages the library does not write cost nothing (calloc would
        // memset them once glibc serves that size from its heap).
        const size_t bytes = static_cast<size_t>(count > 0 ? count : 1) * sizeof(float);
        if (bytes >= kMappedOutputBytes) {
            void *memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (memory == MAP_FAILED) fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape " + text);
            auto *mapping = new Mapping{memory, bytes};
            py::capsule owner(mapping, [](void *p) {
                auto *m = static_cast<Mapping *>(p);
                munmap(m->memory, m->bytes);
                delete m;
            });
            return py::array_t<float>(s, static_cast<float *>(memory), owner);
        }
        void *memory = std::calloc(bytes, 1);
        if (memory == nullptr) fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape " + text);
        py::capsule owner(memory, [](void *p) { std::free(p); });
        return py::array_t<float>(s, static_cast<float *>(memory), owner);
    } catch (py::error_already_set &e) {
        if (e.matches(PyExc_MemoryError) || e.matches(PyExc_ValueError))
            fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape " + text + " (" +
                                           e.what() + ")");
        throw;
    }
}

std::string layout_of(const std::string &name) {
    // Only for messages; the library checks the shapes.
    if (name == "mlp.post_act") return "(T, d_ff)";
    if (name == "attn.qk_probs") return "(T, T_k, n_heads) [query, key, head]";
    if (name == "attn.v") return "(T_k, n_heads, d_head)";
    if (name.rfind("online_", 0) == 0) return "(T, n_latents)";
    if (name == "mlp.to_residual") return "(d_ff, d_model)";
    if (name == "attn.to_residual") return "(n_heads, d_head, d_model)";
    if (name == "decoder") return "(n_latents, n_inputs)";
    if (name == "unembedding") return "(d_model, n_vocab)";
    if (name == "layer_norm_gain.final") return "(d_model,)";
    if (name.rfind("resid.delta_", 0) == 0) return "(T, d_model)";
    return "";
}

}  // namespace nwpy

// Output arrays: the memory the binding's results live in, and set_output_cache_bytes /
// get_output_cache_bytes.
//
// Large outputs (at least kMappedBytes) are anonymous mappings aligned to 2 MiB with transparent
// huge pages requested: the first touch of a page then faults in 2 MiB, not 4 KiB, which is most
// of the cost of a fresh (T, T, heads) result. When such an array is released its mapping is
// kept, up to a limit, for the next output of the same size, whose pages are then present
// already: repeated calls of one shape (a layer loop, a server answering requests) stop paying
// for page faults. Smaller outputs come from calloc-like zero pages or posix_memalign.
#include "outputs.hpp"

#include "args.hpp"
#include "info.hpp"

#include <sys/mman.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace nwpy __attribute__((visibility("hidden"))) {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;
// Outputs at least this large are cached mappings; zeroed ones of at least kZeroPagesBytes are
// plain mappings (the system's zero pages: what the library does not write costs nothing).
constexpr size_t kMappedBytes = size_t{4} << 20;
constexpr size_t kZeroPagesBytes = size_t{256} << 10;
constexpr size_t kDefaultCacheBytes = size_t{256} << 20;

struct Mapping {
    void *base;
    size_t bytes;
    bool cached;  // returned to the cache on release (else unmapped)
};

// Released mappings kept for reuse, oldest first. Arrays are made and released with the GIL
// held; the mutex makes that independent of it. Never destroyed (capsules may outlive statics).
struct Cache {
    std::mutex mu;
    std::vector<Mapping> kept;
    size_t bytes = 0;
    size_t limit = kDefaultCacheBytes;

    // Unmaps the oldest mappings until at most `limit` bytes are kept. Called with mu held.
    void trim() {
        size_t drop = 0;
        while (bytes > limit && drop < kept.size()) {
            munmap(kept[drop].base, kept[drop].bytes);
            bytes -= kept[drop].bytes;
            ++drop;
        }
        kept.erase(kept.begin(), kept.begin() + static_cast<std::ptrdiff_t>(drop));
    }
};
Cache &cache() {
    static Cache *c = new Cache;
    return *c;
}

size_t round_up(size_t bytes, size_t unit) { return (bytes + unit - 1) / unit * unit; }

// A fresh anonymous mapping of `bytes` (a multiple of 2 MiB) at a 2 MiB boundary, huge pages
// requested (a hint: ignored where the system has none). nullptr when the system refuses.
void *map_huge(size_t bytes) {
    const size_t span = bytes + kHugePage;
    void *raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHugePage - 1) & ~static_cast<uintptr_t>(kHugePage - 1);
    const size_t head = aligned - start, tail = span - head - bytes;
    if (head) munmap(raw, head);
    if (tail) munmap(reinterpret_cast<void *>(aligned + bytes), tail);
    madvise(reinterpret_cast<void *>(aligned), bytes, MADV_HUGEPAGE);
    return reinterpret_cast<void *>(aligned);
}

// A mapping of `bytes` for a large output: a kept one of the same size (its pages present, its
// contents not zero), else a fresh one (zero).
Mapping take_mapping(size_t bytes, bool *fresh) {
    const size_t mapped = round_up(bytes, kHugePage);
    {
        Cache &c = cache();
        std::lock_guard<std::mutex> lock(c.mu);
        for (size_t i = c.kept.size(); i-- > 0;) {
            if (c.kept[i].bytes != mapped) continue;
            Mapping m = c.kept[i];
            c.kept.erase(c.kept.begin() + static_cast<std::ptrdiff_t>(i));
            c.bytes -= m.bytes;
            *fresh = false;
            return m;
        }
    }
    *fresh = true;
    return Mapping{map_huge(mapped), mapped, true};
}

void release_mapping(void *p) {
    auto *m = static_cast<Mapping *>(p);
    Cache &c = cache();
    bool keep = false;
    if (m->cached) {
        std::lock_guard<std::mutex> lock(c.mu);
        if (m->bytes <= c.limit) {
            c.kept.push_back(*m);
            c.bytes += m->bytes;
            c.trim();
            keep = true;
        }
    }
    if (!keep) munmap(m->base, m->bytes);
    delete m;
}

py::array_t<float> mapped_array(std::vector<py::ssize_t> &shape, Mapping m) {
    auto *owned = new Mapping(m);
    py::capsule owner(owned, release_mapping);
    return py::array_t<float>(shape, static_cast<float *>(m.base), owner);
}

}  // namespace

py::array_t<float> new_output(const std::vector<int64_t> &shape, bool want_zeroed, bool *zeroed) {
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
    if (zeroed) *zeroed = false;
    const size_t bytes = static_cast<size_t>(count > 0 ? count : 1) * sizeof(float);
    const std::string no_memory = "cannot allocate an output of shape " + text;
    try {
        std::vector<py::ssize_t> s(shape.begin(), shape.end());
        if (bytes >= kMappedBytes) {
            bool fresh = false;
            Mapping m = take_mapping(bytes, &fresh);
            if (m.base == nullptr) fail(NW_ERR_OUT_OF_MEMORY, no_memory);
            if (zeroed) *zeroed = fresh;
            return mapped_array(s, m);
        }
        if (want_zeroed && bytes >= kZeroPagesBytes) {
            void *memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (memory == MAP_FAILED) fail(NW_ERR_OUT_OF_MEMORY, no_memory);
            if (zeroed) *zeroed = true;
            return mapped_array(s, Mapping{memory, bytes, false});
        }
        // 64-byte aligned (numpy's own arrays start 16 bytes into a cache line, which costs the
        // library's vector stores a split line each); zeroed by hand when asked (small).
        void *memory = nullptr;
        if (posix_memalign(&memory, 64, bytes) != 0) fail(NW_ERR_OUT_OF_MEMORY, no_memory);
        if (want_zeroed) {
            std::memset(memory, 0, bytes);
            if (zeroed) *zeroed = true;
        }
        py::capsule owner(memory, [](void *p) { std::free(p); });
        return py::array_t<float>(s, static_cast<float *>(memory), owner);
    } catch (py::error_already_set &e) {
        if (e.matches(PyExc_MemoryError) || e.matches(PyExc_ValueError))
            fail(NW_ERR_OUT_OF_MEMORY, no_memory + " (" + e.what() + ")");
        throw;
    }
}

// A caller's out= array: a writable, C-contiguous float32 numpy array or CPU torch tensor.
// Its shape is checked separately (check_out_shape), under the locks.
HeldPtr hold_out(py::handle obj, const char *what) {
    const std::string w = what;
    if (!PyObject_CheckBuffer(obj.ptr())) {
        py::object rg = getattr_or_null(obj, "requires_grad", w);
        if (rg && rg.ptr() == Py_True)
            fail(NW_ERR_INVALID_ARGUMENT,
                 w + ": the tensor requires grad; nodewrite writes outside autograd (pass a "
                     "tensor without requires_grad)");
    }
    HeldPtr h = hold_writable_tensor(obj, w);
    if (h->dtype != NW_DTYPE_F32)
        fail(NW_ERR_UNSUPPORTED_DTYPE, w + ": dtype " + dtype_text(h->dtype) + ", expected float32");
    int64_t expect = 1;
    for (size_t i = h->shape.size(); i-- > 0;) {
        if (h->shape[i] > 1 && h->strides[i] != expect)
            fail(NW_ERR_INVALID_ARGUMENT,
                 w + ": not C-contiguous (strides in elements " + shape_text(h->strides) +
                     " for shape " + shape_text(h->shape) + "); pass a C-contiguous float32 array");
        expect *= h->shape[i] > 0 ? h->shape[i] : 1;
    }
    return h;
}

void check_out_shape(const Held &h, const std::vector<int64_t> &shape, const char *what) {
    if (h.shape != shape)
        fail(NW_ERR_SHAPE_MISMATCH, std::string(what) + ": shape " + shape_text(h.shape) + ", expected " + shape_text(shape));
}

size_t element_count(const std::vector<int64_t> &shape) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
}

py::array_t<int64_t> new_output_i64(const std::vector<int64_t> &shape) {
    int64_t count = 1;
    for (int64_t d : shape) {
        if (d < 0 || (d > 0 && count > (PY_SSIZE_T_MAX / 8) / d))
            fail(NW_ERR_OUT_OF_MEMORY, "an output of shape " + shape_text(shape) + " is too large");
        count *= d;
    }
    try {
        std::vector<py::ssize_t> s(shape.begin(), shape.end());
        return py::array_t<int64_t>(s);
    } catch (py::error_already_set &e) {
        if (e.matches(PyExc_MemoryError) || e.matches(PyExc_ValueError))
            fail(NW_ERR_OUT_OF_MEMORY, "cannot allocate an output of shape " + shape_text(shape));
        throw;
    }
}

std::vector<int64_t> predicted_shape(const Model &m, const Store &s, const std::vector<int32_t> &dims,
                                     const std::vector<int32_t> &activations, int32_t layer) {
    int64_t tokens = -1, latents = -1;
    for (int32_t act : activations) {
        const std::vector<int32_t> &rule = activation_facts(act).dims;
        std::vector<int64_t> sh = stored_shape(s, act, layer);
        if (sh.size() != rule.size()) continue;
        for (size_t i = 0; i < rule.size(); ++i) {
            if (rule[i] == NW_DIM_TOKENS && tokens < 0) tokens = sh[i];
            if (rule[i] == NW_DIM_LATENTS && latents < 0) latents = sh[i];
        }
    }
    std::vector<int64_t> out;
    for (int32_t d : dims) {
        int64_t v = -1;
        switch (d) {
            case NW_DIM_ONE: v = 1; break;
            case NW_DIM_TOKENS: v = tokens; break;
            case NW_DIM_TOKEN_PAIRS: v = tokens < 0 || tokens > (int64_t{1} << 31) ? -1 : tokens * (tokens + 1) / 2; break;
            case NW_DIM_HEADS: v = m.dims.n_heads; break;
            case NW_DIM_D_HEAD: v = m.dims.d_head; break;
            case NW_DIM_D_MODEL: v = m.dims.d_model; break;
            case NW_DIM_D_FF: v = m.dims.d_ff; break;
            case NW_DIM_LATENTS: v = latents; break;
            case NW_DIM_VOCAB: v = m.n_vocab > 0 ? m.n_vocab : -1; break;
            case NW_DIM_HEAD_CHANNELS: v = m.dims.n_heads * m.dims.d_head; break;
        }
        if (v < 0) return {};
        out.push_back(v);
    }
    return out;
}

void init_outputs(py::module_ &mod) {
    mod.def("set_output_cache_bytes", [](py::handle n) {
        const int64_t v = to_int(n, "n", 0, INT64_MAX, NW_ERR_INVALID_ARGUMENT);
        Cache &c = cache();
        std::lock_guard<std::mutex> lock(c.mu);
        c.limit = static_cast<size_t>(v);
        c.trim();
    }, R"doc(set_output_cache_bytes(n: int) -> None

Output arrays of 4 MiB and more live in their own memory mappings (2 MiB aligned, transparent
huge pages requested). When such an array is released, its mapping is kept for the next output
of the same size, so that repeated calls of one shape do not fault in fresh pages each time;
at most n bytes are kept (process-wide, oldest released first; default 256 MiB). 0 keeps none
and releases what is kept. Results do not depend on it.
)doc");
    mod.def("get_output_cache_bytes", [] {
        Cache &c = cache();
        std::lock_guard<std::mutex> lock(c.mu);
        return static_cast<int64_t>(c.limit);
    }, "get_output_cache_bytes() -> int\n\nThe most bytes of released output memory kept for reuse (see set_output_cache_bytes).");
}

}  // namespace nwpy

// Model internals shared by model.cpp and checkpoints.cpp.
#pragma once

#include <mutex>
#include <string>

#include "objects.hpp"

namespace nwpy __attribute__((visibility("hidden"))) {

// Reads the unembedding's width from the library into m.n_vocab (after every change of the model).
void refresh_vocab(Model &m);

// Sets a weight or decoder under the model's lock, keeping `held` (a borrowed object, or null) for
// the slot; the replaced object is dropped after unlocking (its destructor may run Python code).
// hint (may be empty) is appended to the library's message on failure.
template <class F>
inline void set_under_lock(Model &m, Slot slot, HeldPtr held, F c_call, const std::string &hint) {
    HeldPtr old;
    {
        std::unique_lock<std::shared_mutex> lock(m.mu);  // waits for GIL-free readers only
        ++m.writes;
        nw_status st = c_call();
        if (st != NW_OK) {
            std::string msg = nw_last_error_message();
            fail(st, hint.empty() ? msg : msg + "; " + hint);
        }
        refresh_vocab(m);
        auto it = m.borrowed.find(slot);
        if (it != m.borrowed.end()) {
            old = std::move(it->second);
            m.borrowed.erase(it);
        }
        if (held) m.borrowed.emplace(slot, std::move(held));
    }
}


// Model.from_safetensors and Model.load_autoencoder, registered on the Model class.
void init_checkpoints(py::class_<Model> &cls);

}  // namespace nwpy

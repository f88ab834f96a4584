#!/usr/bin/env python3
"""nodewrite Python API against what a user would otherwise write by hand, at GPT-2-small
shape (d_model 768, 12 heads x 64, d_ff 3072) and T = 1024 tokens, in one process.

Baseline: torch when it is installed (the one-liner
`out = torch.zeros(T, d_model); out[q] = probs[q, k, h] * v[k, h] @ W_O[h]`, and the vector
alone `probs[q, k, h] * v[k, h] @ W_O[h]`), numpy otherwise. Medians of per-call times over
many batches; benchmarks print, they never assert.

Usage: bench.py [--quick] [--numpy]
  --numpy  compare against numpy even when torch is installed (torch is then not loaded: mixing
           numpy's OpenBLAS threads and torch's OpenMP threads in one process on a small
           machine slows torch's parallel zero fill by orders of magnitude)
"""

import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import fmt_time, per_call_medians  # noqa: E402

import nodewrite as nw  # noqa: E402

D_MODEL, N_HEADS, D_HEAD, D_FF, T = 768, 12, 64, 3072, 1024


def main() -> None:
    quick = "--quick" in sys.argv
    scale = 5 if quick else 1
    force_numpy = "--numpy" in sys.argv
    try:
        if force_numpy:
            raise ImportError
        import torch
    except ImportError:
        torch = None

    rng = np.random.default_rng(0)
    probs = rng.random((T, T, N_HEADS), dtype=np.float32) * np.tril(np.ones((T, T), np.float32))[:, :, None]  # causal
    v = rng.standard_normal((T, N_HEADS, D_HEAD), dtype=np.float32)
    w_o = rng.standard_normal((N_HEADS, D_HEAD, D_MODEL), dtype=np.float32) * 0.02
    post = rng.standard_normal((T, D_FF), dtype=np.float32)
    w_mlp = rng.standard_normal((D_FF, D_MODEL), dtype=np.float32) * 0.02

    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=D_FF)
    model.set_weight("attn.to_residual", 0, w_o, copy=False)
    model.set_weight("mlp.to_residual", 0, w_mlp, copy=False)
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, probs)
    store.put("attn.v", 0, v)
    store.put("mlp.post_act", 0, post)

    q, k, h = 700, 512, 5
    t, n = 700, 1234
    attn = nw.NodeIndex("attention_head", 0, (q, k, h))
    mlp = nw.NodeIndex("mlp_neuron", 0, (t, n))
    d_attn = nw.NodeWriteDeriver(model, attn)
    d_mlp = nw.NodeWriteDeriver(model, mlp)

    print(f"nodewrite {nw.__version__} (libnodewrite {nw.library_version()}), Python {platform.python_version()}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    print(f"shape: d_model {D_MODEL}, {N_HEADS} heads x {D_HEAD}, d_ff {D_FF}, T = {T}; "
          f"attention node (q={q}, k={k}, h={h}), MLP node (t={t}, n={n})")

    if torch is not None:
        tp, tv, two = torch.from_numpy(probs), torch.from_numpy(v), torch.from_numpy(w_o)
        tpost, twm = torch.from_numpy(post), torch.from_numpy(w_mlp)
        base = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"

        def attn_vec_base():
            return tp[q, k, h] * tv[k, h] @ two[h]

        def attn_full_base():
            out = torch.zeros(T, D_MODEL)
            out[q] = tp[q, k, h] * tv[k, h] @ two[h]
            return out

        def mlp_vec_base():
            return tpost[t, n] * twm[n]

        def mlp_full_base():
            out = torch.zeros(T, D_MODEL)
            out[t] = tpost[t, n] * twm[n]
            return out

        check_vec = attn_vec_base().numpy()
    else:
        if force_numpy:
            print("--numpy: comparing against numpy (torch not loaded in this process)")
        else:
            print("torch is not installed: comparing against numpy instead of the torch one-liner")
        base = f"numpy {np.__version__}"

        def attn_vec_base():
            return probs[q, k, h] * v[k, h] @ w_o[h]

        def attn_full_base():
            out = np.zeros((T, D_MODEL), np.float32)
            out[q] = probs[q, k, h] * v[k, h] @ w_o[h]
            return out

        def mlp_vec_base():
            return post[t, n] * w_mlp[n]

        def mlp_full_base():
            out = np.zeros((T, D_MODEL), np.float32)
            out[t] = post[t, n] * w_mlp[n]
            return out

        check_vec = attn_vec_base()

    vec, row = d_attn.write_vector(store)
    agree = float(np.max(np.abs(vec - check_vec)))
    print(f"agreement with the baseline (attention vector): max |diff| = {agree:.2e}, token row {row}")
    print(f"baseline: {base}; medians of per-call times, interleaved batches\n")

    rows = []
    groups = [
        ("attention write vector", 400 // scale, 50, {
            "nodewrite deriver.write_vector": lambda: d_attn.write_vector(store),
            "nodewrite node_write_vectors([node])": lambda: nw.node_write_vectors(model, store, [attn]),
            "baseline probs[q,k,h] * v[k,h] @ W_O[h]": attn_vec_base,
        }),
        ("attention full (T, d_model)", 100 // scale, 10, {
            "nodewrite deriver.write": lambda: d_attn.write(store),
            "nodewrite node_write (one-shot)": lambda: nw.node_write(model, store, attn),
            "baseline zeros + out[q] = ...": attn_full_base,
        }),
        ("MLP write vector", 400 // scale, 50, {
            "nodewrite deriver.write_vector": lambda: d_mlp.write_vector(store),
            "baseline post_act[t,n] * W[n]": mlp_vec_base,
        }),
        ("MLP full (T, d_model)", 100 // scale, 10, {
            "nodewrite deriver.write": lambda: d_mlp.write(store),
            "baseline zeros + out[t] = ...": mlp_full_base,
        }),
    ]
    for title, batches, calls, fns in groups:
        med = per_call_medians(fns, batches=batches, calls=calls)
        base_name = [k for k in fns if k.startswith("baseline")][0]
        print(f"{title}  ({batches} batches x {calls} calls)")
        for name, s in med.items():
            ratio = med[base_name] / s
            tag = "" if name == base_name else f"   {ratio:5.2f}x faster than baseline" if ratio >= 1 else f"   {1 / ratio:5.2f}x slower than baseline"
            print(f"  {name:42s} {fmt_time(s)}{tag}")
        print()
        rows.append((title, med, base_name))

    if torch is not None and torch.get_num_threads() > 1:
        # The full output is bound by filling 3 MB with zeros: nodewrite does it on one thread,
        # torch.zeros on all of its intra-op threads. Same comparison with torch on one thread:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        med = per_call_medians({
            "nodewrite deriver.write (attention)": lambda: d_attn.write(store),
            "baseline zeros + out[q] = ... (1 thread)": attn_full_base,
            "nodewrite deriver.write (MLP)": lambda: d_mlp.write(store),
            "baseline zeros + out[t] = ... (1 thread)": mlp_full_base,
        }, batches=100 // scale, calls=10)
        torch.set_num_threads(threads)
        print("full (T, d_model) output with torch on 1 thread (nodewrite fills zeros on one thread)")
        for name, s in med.items():
            print(f"  {name:42s} {fmt_time(s)}")
        print(f"  ratios: attention {med['baseline zeros + out[q] = ... (1 thread)'] / med['nodewrite deriver.write (attention)']:.2f}x, "
              f"MLP {med['baseline zeros + out[t] = ... (1 thread)'] / med['nodewrite deriver.write (MLP)']:.2f}x\n")

    # Many nodes in one call vs a Python loop of the baseline.
    nodes = [nw.NodeIndex("attention_head", 0, (qq, kk, hh)) for qq in (100, 500, 1000) for kk in range(0, 100, 3) for hh in range(N_HEADS)]
    idx = [nd.tensor_indices for nd in nodes]

    def loop_base():
        return [attn_vec_base_at(*i) for i in idx]

    if torch is not None:
        def attn_vec_base_at(a, b, c):
            return tp[a, b, c] * tv[b, c] @ two[c]
    else:
        def attn_vec_base_at(a, b, c):
            return probs[a, b, c] * v[b, c] @ w_o[c]

    med = per_call_medians({
        "nodewrite node_write_vectors(nodes)": lambda: nw.node_write_vectors(model, store, nodes),
        "baseline loop of one-liners": loop_base,
    }, batches=20 // min(scale, 4), calls=2)
    print(f"{len(nodes)} attention write vectors")
    for name, s in med.items():
        print(f"  {name:42s} {fmt_time(s)} per batch, {fmt_time(s / len(nodes))} per node")
    print(f"  ratio: {med['baseline loop of one-liners'] / med['nodewrite node_write_vectors(nodes)']:.1f}x\n")

    a_vec = rows[0][1]
    a_full = rows[1][1]
    print("goals: write vector >= 2x faster than the one-liner; full output on par")
    print(f"  attention vector: {a_vec[rows[0][2]] / a_vec['nodewrite deriver.write_vector']:.2f}x "
          f"(deriver.write_vector vs {rows[0][2].split(' ', 1)[1]})")
    print(f"  attention full:   {a_full[rows[1][2]] / a_full['nodewrite deriver.write']:.2f}x "
          f"(deriver.write), {a_full[rows[1][2]] / a_full['nodewrite node_write (one-shot)']:.2f}x (node_write)")


if __name__ == "__main__":
    main()
    if "--numpy" not in sys.argv:
        try:
            import torch  # noqa: F401  (only to know whether the run above used torch)
            has_torch = True
        except ImportError:
            has_torch = False
        if has_torch:
            import subprocess
            print("\n---- the same against numpy, in a separate process without torch ----", flush=True)
            subprocess.run([sys.executable, os.path.abspath(__file__), "--numpy", *sys.argv[1:]], check=True)

#!/usr/bin/env python3
"""Node sets (issue 9) against what a user would write by hand, at GPT-2-small shape (d_model 768,
12 heads x 64, d_ff 3072) and T = 1024 tokens, in one process, through Python.

Every row is a median of per-call times (interleaved batches, _timing.per_call_medians); the
ratio is baseline / nodewrite (> 1: nodewrite is faster) against the FASTEST baseline of the
group. Every baseline that accepts a preallocated output gets one (as nodewrite gets out=):

  keys+heads @ q=1023   all 12,288 (key <= q, head) writes at the last query (604 M multiply-adds,
                        38 MB out): nodewrite.node_writes(out=) vs torch.einsum("kh,khd,hdm->khm"),
                        torch.bmm(..., out=) and np.matmul(..., out=) (head-major like nodewrite)
  neurons @ t           all 3,072 neuron writes at one token: vs torch.mul(post[t,:,None], W_out,
                        out=) and np.multiply(..., out=)
  4,096 random heads    attention nodes at random (q, k, h) over all queries: vs torch, gathering the
                        scaled values and one matmul per head, index_copy_ into a preallocated out
  single node           one attention node's write vector and its (T, d_model) output, one MLP
                        neuron's (T, d_model) output: vs the torch one-liners

"peak +MB" is the extra resident memory of one call (Linux VmHWM after /proc/self/clear_refs,
minus the RSS before the call; the output included unless preallocated).

--consume: every call of the two large groups (keys+heads, neurons) is followed by a read of its
output (a sum over it with torch, the same reader for every competitor, as a caller reading the
writes next would), timed with the call: the measure for the output store policy (non-temporal
stores leave the output out of cache; cached stores leave it in cache, where the next read finds it).

--threads N: nodewrite and torch both on N threads (default: each library's own default).
--large-only: only the two large groups.

Usage: bench_sets.py [--quick] [--threads N] [--consume] [--large-only]   (prints one table; never asserts)
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import fmt_time, per_call_medians  # noqa: E402

import nodewrite as nw  # noqa: E402

D_MODEL, N_HEADS, D_HEAD, D_FF, T = 768, 12, 64, 3072, 1024


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def peak_extra_mb(fn) -> float:
    """Extra resident memory of one call of fn (Linux only; nan elsewhere)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return float("nan")
    before = _status_mb("VmRSS")
    out = fn()
    peak = _status_mb("VmHWM")
    del out
    return peak - before


def main() -> None:
    quick = "--quick" in sys.argv
    import torch

    if "--threads" in sys.argv:  # both libraries alike
        n_threads = int(sys.argv[sys.argv.index("--threads") + 1])
        nw.set_num_threads(n_threads)
        torch.set_num_threads(n_threads)

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((N_HEADS, T, T), dtype=np.float32)
    logits[:, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = -np.inf
    e = np.exp(logits - logits.max(axis=2, keepdims=True))
    probs = np.ascontiguousarray((e / e.sum(axis=2, keepdims=True)).transpose(1, 2, 0))  # (q, k, h)
    del logits, e
    v = rng.standard_normal((T, N_HEADS, D_HEAD), dtype=np.float32)
    w_o = rng.standard_normal((N_HEADS, D_HEAD, D_MODEL), dtype=np.float32) * 0.02
    post = rng.standard_normal((T, D_FF), dtype=np.float32)
    w_out = rng.standard_normal((D_FF, D_MODEL), dtype=np.float32) * 0.02

    model = nw.Model(n_layers=1, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=D_FF)
    model.set_weight("attn.to_residual", 0, w_o, copy=False)
    model.set_weight("mlp.to_residual", 0, w_out, copy=False)
    store = nw.ActivationStore()
    store.put("attn.qk_probs", 0, probs)
    store.put("attn.v", 0, v)
    store.put("mlp.post_act", 0, post)
    tp, tv, two, tpost, twout = (torch.from_numpy(x) for x in (probs, v, w_o, post, w_out))

    print(f"nodewrite {nw.__version__} ({nw.get_num_threads()} threads), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), numpy {np.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; GPT-2-small shape, T = {T}, float32")

    q = T - 1
    kh = nw.keys_and_heads_at_query(q, model)  # (12288, 3), head-major
    # nodewrite's outputs come from torch's allocator like torch's own (64-byte aligned; numpy's
    # large arrays start 16 bytes into a cache line, which costs every vector store a split).
    out_kh = torch.empty(len(kh), D_MODEL).numpy()
    t_out_hkm = torch.empty(N_HEADS, T, D_MODEL)
    n_out_hkm = np.empty((N_HEADS, T, D_MODEL), np.float32)
    pq_t = tp[q].t().contiguous()  # (h, k)
    vq = tv.permute(1, 0, 2)  # (h, k, d)

    def kh_einsum():
        return torch.einsum("kh,khd,hdm->khm", tp[q], tv, two)

    def kh_bmm():
        return torch.bmm(pq_t[:, :, None] * vq, two, out=t_out_hkm)

    def kh_numpy():
        return np.matmul(probs[q].T[:, :, None] * v.transpose(1, 0, 2), w_o, out=n_out_hkm)

    t_ = 700
    neurons = nw.neurons_at_token(t_, model)
    out_n = torch.empty(D_FF, D_MODEL).numpy()
    t_out_n = torch.empty(D_FF, D_MODEL)

    rand = np.stack([rng.integers(0, T, 4096), np.zeros(4096, np.int64), rng.integers(0, N_HEADS, 4096)], axis=1)
    rand[:, 1] = (rng.random(4096) * (rand[:, 0] + 1)).astype(np.int64)  # key <= query
    out_r = torch.empty(4096, D_MODEL).numpy()
    t_out_r = torch.empty(4096, D_MODEL)
    trand = torch.from_numpy(rand)
    by_head = [torch.nonzero(trand[:, 2] == h).flatten() for h in range(N_HEADS)]

    def random_torch():
        for h, sel in enumerate(by_head):
            qs, ks = trand[sel, 0], trand[sel, 1]
            x = tp[qs, ks, h, None] * tv[ks, h]
            t_out_r.index_copy_(0, sel, x @ two[h])
        return t_out_r

    node = nw.NodeIndex("attention_head", 0, (700, 512, 5))
    one = np.array([[700, 512, 5]], np.int64)
    out_one = np.empty((1, D_MODEL), np.float32)
    mlp_node = nw.NodeIndex("mlp_neuron", 0, (700, 1234))

    def torch_full():
        out = torch.zeros(T, D_MODEL)
        out[700] = tp[700, 512, 5] * tv[512, 5] @ two[5]
        return out

    def torch_mlp_full():
        out = torch.zeros(T, D_MODEL)
        out[700] = tpost[700, 1234] * twout[1234]
        return out

    # agreement (printed, not asserted)
    ref = nw.node_writes(model, store, "attention_head", 0, kh)
    agree = float(np.abs(ref.reshape(N_HEADS, T, D_MODEL) - kh_bmm().numpy()).max())
    agree_r = float(np.abs(nw.node_writes(model, store, "attention_head", 0, rand) - random_torch().numpy()).max())
    print(f"agreement: keys+heads vs bmm max|diff| {agree:.1e}; random heads vs torch {agree_r:.1e}\n")

    s = 4 if quick else 1
    groups = [
        ("keys+heads @ q=1023 (12,288 nodes)", 20 // s, 2, {
            "nodewrite node_writes(out=)": lambda: nw.node_writes(model, store, "attention_head", 0, kh, out=out_kh),
            "torch.einsum(kh,khd,hdm->khm)": kh_einsum,
            "torch.bmm(..., out=)": kh_bmm,
            "np.matmul(..., out=)": kh_numpy,
        }),
        ("neurons @ t (3,072 nodes)", 40 // s, 5, {
            "nodewrite node_writes(out=)": lambda: nw.node_writes(model, store, "mlp_neuron", 0, neurons, out=out_n),
            "torch.mul(post[t,:,None], W_out, out=)": lambda: torch.mul(tpost[t_, :, None], twout, out=t_out_n),
            "np.multiply(..., out=)": lambda: np.multiply(post[t_, :, None], w_out, out=out_n),
        }),
        ("4,096 random attention nodes", 20 // s, 3, {
            "nodewrite node_writes(out=)": lambda: nw.node_writes(model, store, "attention_head", 0, rand, out=out_r),
            "torch gather + matmul per head": random_torch,
        }),
        ("single attention node: vector", 200 // s, 50, {
            "nodewrite node_writes([[q,k,h]], out=)": lambda: nw.node_writes(model, store, "attention_head", 0, one, out=out_one),
            "torch p[q,k,h] * v[k,h] @ W_O[h]": lambda: tp[700, 512, 5] * tv[512, 5] @ two[5],
        }),
        ("single attention node: (T, d_model)", 60 // s, 10, {
            "nodewrite node_write": lambda: nw.node_write(model, store, node),
            "torch zeros + out[q] = ...": torch_full,
        }),
        ("single MLP neuron: (T, d_model)", 60 // s, 10, {
            "nodewrite node_write": lambda: nw.node_write(model, store, mlp_node),
            "torch zeros + out[t] = ...": torch_mlp_full,
        }),
    ]
    if "--consume" in sys.argv:
        def consumed(fn):
            def run():
                out = fn()
                # The same reader for every output (numpy's own sum is ~3x slower than torch's:
                # it would weigh on the numpy-returning competitors, nodewrite among them).
                return out, float((out if isinstance(out, torch.Tensor) else torch.from_numpy(out)).sum())
            return run
        for i in (0, 1):
            title, batches, calls, fns = groups[i]
            groups[i] = (title + " + read", batches, calls, {k: consumed(f) for k, f in fns.items()})
    if "--large-only" in sys.argv:
        groups = groups[:2]
    print(f"{'group':<38} {'implementation':<42} {'median':>10} {'ratio':>8} {'peak +MB':>9}")
    for title, batches, calls, fns in groups:
        med = per_call_medians(fns, batches, calls, warmup=2)
        nw_name = next(iter(fns))
        best_base = min(v for k, v in med.items() if k != nw_name)
        for name, fn in fns.items():
            ratio = f"{best_base / med[name]:.2f}x" if name == nw_name else ""
            mem = peak_extra_mb(fn)
            print(f"{title:<38} {name:<42} {fmt_time(med[name]):>10} {ratio:>8} {mem:9.1f}")
            title = ""
    print("\nratio = fastest baseline / nodewrite (>= 1: nodewrite at least as fast)")


if __name__ == "__main__":
    main()

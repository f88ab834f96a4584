#!/usr/bin/env python3
"""Every neuron at one token as a node set (3,072 MLP neurons, GPT-2-small shape, 9.4 MB out),
each call followed by torch's sum over its output (bench_sets.py --consume's reader), with the call
and the reader timed apart: where a slow call-plus-read spends its time. Both libraries on
--threads N threads (default 2). Prints percentiles of 600 calls; never asserts.

Usage: bench_set_reader.py [--threads N]
"""
import sys
import time

import numpy as np
import torch

import nodewrite as nw

N = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
nw.set_num_threads(N)
torch.set_num_threads(N)
D, FF, T = 768, 3072, 1024
rng = np.random.default_rng(0)
post = rng.standard_normal((T, FF), dtype=np.float32); w = rng.standard_normal((FF, D), dtype=np.float32)
m = nw.Model(n_layers=1, d_model=D, n_heads=12, d_head=64, d_ff=FF)
m.set_weight("mlp.to_residual", 0, w, copy=False)
s = nw.ActivationStore(); s.put("mlp.post_act", 0, post)
ix = np.stack([np.full(FF, 37), np.arange(FF)], 1).astype(np.int64)
out = np.empty((FF, D), np.float32)
tc, tr = [], []
for i in range(600):
    t0 = time.perf_counter(); nw.node_writes(m, s, "mlp_neuron", 0, ix, out=out); t1 = time.perf_counter()
    float(torch.from_numpy(out).sum()); t2 = time.perf_counter()
    tc.append((t1 - t0) * 1e6); tr.append((t2 - t1) * 1e6)
tc, tr = np.array(tc), np.array(tr)
print("call  us: p50 %.0f p90 %.0f p99 %.0f max %.0f  n>3ms %d" % (*np.percentile(tc, [50, 90, 99]), tc.max(), (tc > 3000).sum()))
print("reader us: p50 %.0f p90 %.0f p99 %.0f max %.0f  n>3ms %d" % (*np.percentile(tr, [50, 90, 99]), tr.max(), (tr > 3000).sum()))

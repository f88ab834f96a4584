#!/usr/bin/env python3
"""Benchmark: transformer-debugger's own write-family derivers inside TDB's pipeline, optionally
against a candidate (a nodewrite function, or anything else) in the same process.

Cases (GPT-2-small shape: d_model 768, 12 heads x 64, d_ff 3072, n_vocab 50257, 12 layers with
activations at one layer, float32, CPU):

  unflattened_attn_write_to_final_residual_grad   (T, T, heads)
  unflattened_attn_write_norm                     (T, T, heads)
  mlp_write_to_final_residual_grad                (T, d_ff)
  token_write_converter                           creating postprocessing.TokenWriteConverter

The derived scalars are timed as TDB runs them:
``make_scalar_deriver(DerivedScalarType.X, DstConfig(model_context=...)).derive_from_raw(raw_store,
PassType.FORWARD)`` on TDB's own ``RawActivationStore`` (built from random tensors like
tools/bench_tdb.py does), holding the layer's ``attn.qk_probs``, ``attn.v``, ``mlp.post_act`` and
the final residual gradient, ``resid.post_mlp`` backward at the last layer, zero except its last
row (TDB's usual loss reads only the last token's logits; ``--dense-grad`` fills every row).

Each case runs in a fresh child process. Memory: the RSS after setup ("before"), and for each
phase (the candidate, if any, first; then TDB) the peak RSS during that phase (Linux VmHWM, reset
through /proc/self/clear_refs before the phase; "+N" is the peak minus the RSS just before the
phase: the extra memory of one call, output included). Medians of at least --reps calls (TDB's
attention gradient case takes seconds per call, so it gets exactly --reps).

A candidate is given as ``--candidate module:function``: ``function(case, env)`` returns a
zero-argument callable that computes the case's output (a torch tensor or numpy array of TDB's
shape; ``None`` for token_write_converter, which only times creation), or ``None`` if it does not
handle the case. ``env`` is a :class:`BenchEnv`: the TDB objects (``model_context``,
``raw_store``, ``dst_config``) and the raw torch tensors (``probs``, ``v``, ``post_act``,
``grad``, ``w_o``, ``w_out``, ``unembedding``, ``ln_gain``), ``layer``, ``n_layers`` and the
dimensions. ``--candidate torch`` is a built-in example: contraction-first torch, no big tensors.

Needs TDB: NODEWRITE_TDB_SRC=/path/to/transformer-debugger and torch in the running Python.

    NODEWRITE_TDB_SRC=/path/to/transformer-debugger python tools/bench_tdb_family.py \
        [--tokens 1024] [--reps 3] [--cases a,b] [--candidate module:function] [--dense-grad]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python_tests"))
import tdb_support  # noqa: E402

N_LAYERS, D_MODEL, N_HEADS, D_HEAD, D_FF, N_VOCAB = 12, 768, 12, 64, 3072, 50257
LAYER = 5

CASES = (
    "unflattened_attn_write_to_final_residual_grad",
    "unflattened_attn_write_norm",
    "mlp_write_to_final_residual_grad",
    "token_write_converter",
)


@dataclasses.dataclass
class BenchEnv:
    """What a candidate gets: TDB's objects and the raw tensors behind them."""

    case: str
    n_tokens: int
    layer: int
    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_ff: int
    n_vocab: int
    model_context: Any
    raw_store: Any
    dst_config: Any
    probs: Any  # (T, T, heads) [query, key, head]
    v: Any  # (T, heads, d_head)
    post_act: Any  # (T, d_ff)
    grad: Any  # (T, d_model): resid.post_mlp backward at the last layer
    w_o: Any  # model_context.get_weight(ATTN_TO_RESIDUAL, layer): (heads, d_head, d_model)
    w_out: Any  # model_context.get_weight(MLP_TO_RESIDUAL, layer): (d_ff, d_model)
    unembedding: Any  # model_context.get_weight(UNEMBEDDING): (d_model, n_vocab)
    ln_gain: Any  # model_context.get_weight(LAYER_NORM_GAIN_FINAL): (d_model,)




def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak RSS since the last reset_peak_rss() (VmHWM), else since the process started."""
    hwm = _status_mb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Linux: writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_now_mb() -> float:
    rss = _status_mb("VmRSS")
    return float("nan") if rss is None else rss


def fmt_time(s: float) -> str:
    if s >= 1.0:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} us"


def timed(fn: Callable[[], Any], reps: int, budget: float) -> tuple[list[float], Any]:
    """At least `reps` samples, more while under `budget` seconds (at most 50); returns the
    samples and the last result."""
    samples: list[float] = []
    out = None
    while len(samples) < reps or (sum(samples) < budget and len(samples) < 50):
        out = None  # let the previous result go before the next call
        t0 = time.perf_counter()
        out = fn()
        samples.append(time.perf_counter() - t0)
    return samples, out


def make_model_context(g):
    """tdb_support's in-memory ModelContext, all layers' output weights, plus the unembedding
    and the final layer norm's gain served the way StandardModelContext serves them
    (``unembed.weight`` (n_vocab, d_model) permuted by an einsum to (d_model, n_vocab))."""
    import torch
    from neuron_explainer.models.model_component_registry import WeightLocationType

    checkpoint = {}
    for layer in range(N_LAYERS):
        checkpoint[f"xf_layers.{layer}.attn.out_proj.weight"] = (
            torch.randn(D_MODEL, N_HEADS * D_HEAD, generator=g).mul_(0.02)
        )
        checkpoint[f"xf_layers.{layer}.mlp.out_layer.weight"] = torch.randn(D_MODEL, D_FF, generator=g).mul_(0.02)
    checkpoint["unembed.weight"] = torch.randn(N_VOCAB, D_MODEL, generator=g).mul_(0.02)
    checkpoint["final_ln.weight"] = 1.0 + 0.1 * torch.randn(D_MODEL, generator=g)
    base = tdb_support.make_model_context(
        checkpoint, n_layers=N_LAYERS, d_model=D_MODEL, n_heads=N_HEADS, d_head=D_HEAD, d_ff=D_FF, n_vocab=N_VOCAB
    )

    class WithUnembedding(type(base)):
        def _get_weight_helper(self, location_type, layer=None, device=None):
            if location_type == WeightLocationType.UNEMBEDDING:
                self.get_weight_calls += 1
                return torch.einsum("vr->rv", self.pieces["unembed.weight"].to(device or self.device))
            if location_type == WeightLocationType.LAYER_NORM_GAIN_FINAL:
                self.get_weight_calls += 1
                return self.pieces["final_ln.weight"].to(device or self.device)
            return super()._get_weight_helper(location_type, layer, device)

    ctx = WithUnembedding()
    ctx.pieces = base.pieces
    return ctx


def build_env(case: str, n_tokens: int, seed: int, dense_grad: bool) -> BenchEnv:
    import torch
    from neuron_explainer.activations.derived_scalars.scalar_deriver import DstConfig
    from neuron_explainer.models.model_component_registry import WeightLocationType

    g = torch.Generator().manual_seed(seed)
    model_context = make_model_context(g)
    logits = torch.randn(N_HEADS, n_tokens, n_tokens, generator=g)
    causal = torch.ones(n_tokens, n_tokens, dtype=torch.bool).tril()
    probs = torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1).permute(1, 2, 0).contiguous()
    del logits, causal
    v = torch.randn(n_tokens, N_HEADS, D_HEAD, generator=g)
    post_act = torch.nn.functional.gelu(torch.randn(n_tokens, D_FF, generator=g))
    grad = torch.zeros(n_tokens, D_MODEL)
    if dense_grad:
        grad.copy_(torch.randn(n_tokens, D_MODEL, generator=g).mul_(0.01))
    else:
        grad[-1] = torch.randn(D_MODEL, generator=g) * 0.01
    raw_store = tdb_support.make_raw_store(
        {
            ("attn.qk_probs", LAYER): probs,
            ("attn.v", LAYER): v,
            ("mlp.post_act", LAYER): post_act,
            ("resid.post_mlp", N_LAYERS - 1, "backward"): grad,
        }
    )
    get = model_context.get_weight
    return BenchEnv(
        case=case,
        n_tokens=n_tokens,
        layer=LAYER,
        n_layers=N_LAYERS,
        d_model=D_MODEL,
        n_heads=N_HEADS,
        d_head=D_HEAD,
        d_ff=D_FF,
        n_vocab=N_VOCAB,
        model_context=model_context,
        raw_store=raw_store,
        dst_config=DstConfig(model_context=model_context),
        probs=probs,
        v=v,
        post_act=post_act,
        grad=grad,
        w_o=get(WeightLocationType.ATTN_TO_RESIDUAL, LAYER),
        w_out=get(WeightLocationType.MLP_TO_RESIDUAL, LAYER),
        unembedding=get(WeightLocationType.UNEMBEDDING),
        ln_gain=get(WeightLocationType.LAYER_NORM_GAIN_FINAL),
    )


def tdb_callable(env: BenchEnv) -> Callable[[], Any]:
    """TDB's own computation for the case, as TDB runs it."""
    from neuron_explainer.activations.derived_scalars.derived_scalar_types import DerivedScalarType
    from neuron_explainer.activations.derived_scalars.make_scalar_derivers import make_scalar_deriver
    from neuron_explainer.activations.derived_scalars.postprocessing import TokenWriteConverter
    from neuron_explainer.models.model_component_registry import PassType

    if env.case == "token_write_converter":
        return lambda: TokenWriteConverter(env.model_context, None)
    deriver = make_scalar_deriver(DerivedScalarType(env.case), env.dst_config)

    def run():
        return deriver.derive_from_raw(env.raw_store, PassType.FORWARD).activations_by_layer_index[env.layer]

    return run


def torch_candidate(case: str, env: BenchEnv) -> Callable[[], Any] | None:
    """Built-in example candidate: contraction-first torch (no (T, T, heads, d_head) tensor)."""
    import torch

    w_o, v, p, g = env.w_o, env.v, env.probs, env.grad
    if case == "unflattened_attn_write_to_final_residual_grad":
        return lambda: p * torch.einsum("khd,qhd->qkh", v, torch.einsum("hdm,qm->qhd", w_o, g))
    if case == "unflattened_attn_write_norm":
        return lambda: p * torch.linalg.norm(torch.einsum("khd,hdm->khm", v, w_o), dim=-1)[None]
    if case == "mlp_write_to_final_residual_grad":
        return lambda: env.post_act * (g @ env.w_out.T)
    if case == "token_write_converter":
        return lambda: env.unembedding * env.ln_gain[:, None]
    return None


def load_candidate(spec: str) -> Callable[[str, BenchEnv], Callable[[], Any] | None]:
    if spec == "torch":
        return torch_candidate
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise SystemExit(f"--candidate: expected module:function or 'torch', got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def max_rel_diff(a: Any, b: Any) -> float | None:
    import numpy as np
    import torch

    if a is None or b is None or not isinstance(b, torch.Tensor):
        return None
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().cpu().numpy()
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.float64) - b).max() / max(1.0, float(np.abs(b).max())))


def run_one(args: argparse.Namespace) -> dict:
    """In the child: build, time candidate then TDB, report JSON."""
    import torch

    env = build_env(args.one, args.tokens, args.seed, args.dense_grad)
    result: dict[str, Any] = {
        "case": args.one,
        "T": args.tokens,
        "dense_grad": args.dense_grad,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "peak_setup_mb": peak_rss_mb(),
    }
    gc.collect()
    result["rss_setup_mb"] = rss_now_mb()
    result["peak_reset"] = reset_peak_rss()
    reps = args.reps
    cand_out = None
    if args.candidate:
        fn = load_candidate(args.candidate)(args.one, env)
        if fn is not None:
            fn()  # warm-up (a drop-in may hand weights over once)
            gc.collect()
            reset_peak_rss()
            samples, cand_out = timed(fn, max(reps, 5), args.budget)
            result["candidate"] = {
                "median_s": statistics.median(samples),
                "n": len(samples),
                "peak_rss_mb": peak_rss_mb(),
            }
    tdb = tdb_callable(env)
    gc.collect()
    reset_peak_rss()  # the candidate's result (cand_out) stays alive: it is counted in "before"
    result["rss_before_tdb_mb"] = rss_now_mb()
    samples, tdb_out = timed(tdb, reps, args.budget if args.one != CASES[0] else 0.0)
    result["tdb"] = {
        "median_s": statistics.median(samples),
        "n": len(samples),
        "samples_s": samples if len(samples) <= 10 else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if isinstance(tdb_out, torch.Tensor):
        result["tdb"]["output"] = {"shape": list(tdb_out.shape), "dtype": str(tdb_out.dtype), "device": str(tdb_out.device)}
    if "candidate" in result:
        result["candidate"]["max_rel_diff"] = max_rel_diff(cand_out, tdb_out)
        result["ratio"] = result["tdb"]["median_s"] / result["candidate"]["median_s"]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=3, help="at least this many calls per measurement")
    ap.add_argument("--budget", type=float, default=2.0, help="keep sampling fast cases for this long (s)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--candidate", default=None, help="module:function, or 'torch' (built-in example)")
    ap.add_argument("--dense-grad", action="store_true", help="a final residual grad with every row non-zero")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one case in this process
    args = ap.parse_args()

    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        print(f"bench-tdb-family: skipped: {reason}")
        return 0
    if args.one:
        print(json.dumps(run_one(args)))
        return 0

    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES:
            raise SystemExit(f"unknown case {c!r}; known: {', '.join(CASES)}")
    print(
        f"TDB write-family derivers inside TDB's pipeline: GPT-2-small shape (d_model {D_MODEL}, "
        f"{N_HEADS} heads x {D_HEAD}, d_ff {D_FF}, n_vocab {N_VOCAB}), T = {args.tokens}, layer {LAYER} "
        f"of {N_LAYERS}, float32, CPU ({os.cpu_count()} CPUs), "
        f"{'dense' if args.dense_grad else 'last-row-only'} final residual grad; one child process per case"
    )
    results = []
    for case in cases:
        cmd = [sys.executable, __file__, "--one", case, "--tokens", str(args.tokens), "--reps", str(args.reps),
               "--budget", str(args.budget), "--seed", str(args.seed)]
        if args.candidate:
            cmd += ["--candidate", args.candidate]
        if args.dense_grad:
            cmd.append("--dense-grad")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{case}: child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        t = r["tdb"]
        line = (
            f"{case:<48} TDB {fmt_time(t['median_s']):>11} (n={t['n']:>2}), "
            f"RSS {r['rss_setup_mb']:6.0f} MB before (peak {r['peak_setup_mb']:6.0f}), "
            f"peak {t['peak_rss_mb']:6.0f} MB (+{t['peak_rss_mb'] - r['rss_before_tdb_mb']:.0f})"
        )
        if "output" in t:
            line += f", out {tuple(t['output']['shape'])} {t['output']['dtype']}"
        print(line, flush=True)
        if "candidate" in r:
            c = r["candidate"]
            diff = c["max_rel_diff"]
            print(
                f"{'':<48} candidate {fmt_time(c['median_s']):>11} (n={c['n']:>2}), peak "
                f"{c['peak_rss_mb']:6.0f} MB (+{c['peak_rss_mb'] - r['rss_setup_mb']:.0f}), ratio {r['ratio']:,.1f}x"
                + ("" if diff is None else f", max|diff|/max(1,max|TDB|) {diff:.2e}"),
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

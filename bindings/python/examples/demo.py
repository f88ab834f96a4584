#!/usr/bin/env python3
"""nodewrite demo: on the bundled fixture model (3 layers, d_model 48, 3 heads x 16, d_ff 192,
7 tokens; weights, activations and outputs saved from OpenAI's transformer-debugger), for each
node type: the write vector's norm and top residual channels, the agreement with the original's
saved output, and the time per call against a numpy formulation of the original's path (for
attention: the full (T, T, heads, d_head) weighted-value tensor, then one element, then the
einsum with W_O), measured in the same run.

Usage: demo.py [FIXTURES_DIR]   (default: Tests/NodeWriteTests/Fixtures)
"""

import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import fmt_time, per_call_medians  # noqa: E402

import nodewrite as nw  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.join(HERE, "..", "..", "..", "Tests", "NodeWriteTests", "Fixtures")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data, "<f4", (b - a) // 4, 8 + n + a).reshape(info["shape"])
    return out


LATENT_ACT = {
    "autoencoder_latent": "online_autoencoder_latent",
    "mlp_autoencoder_latent": "online_mlp_autoencoder_latent",
    "attention_autoencoder_latent": "online_attention_autoencoder_latent",
}
AE_OF = {"autoencoder_latent": "mlp", "mlp_autoencoder_latent": "mlp", "attention_autoencoder_latent": "attention"}


def original_path(t, spec, case):
    """A numpy formulation of the original's computation for one node: it derives the whole
    activation-times-weight tensor the way TDB's derived scalars do, then takes one node."""
    layer, idx, kind = case["layer"], case["tensor_indices"], case["node_type"]
    T_, d_model = spec["model"]["n_tokens"], spec["model"]["d_model"]
    if kind == "attention_head":
        probs = t[f"activations.{layer}.attn.qk_probs"]
        v = t[f"activations.{layer}.attn.v"]
        w_o = t[f"weights.{layer}.attn.to_residual"]
        q, k, h = idx

        def run():
            weighted = np.einsum("qkh,khd->qkhd", probs, v)  # (T, T, heads, d_head)
            x = weighted[q, k, h]
            out = np.zeros((T_, d_model), np.float32)
            out[q % T_] = np.einsum("d,dm->m", x, w_o[h])
            return out
        return run
    if kind == "mlp_neuron":
        post = t[f"activations.{layer}.mlp.post_act"]
        w = t[f"weights.{layer}.mlp.to_residual"]
        tok, n = idx

        def run():
            full = np.einsum("t,m->tm", post[:, n], w[n])  # neuron n's write at every token
            out = np.zeros((T_, d_model), np.float32)
            out[tok % T_] = full[tok]
            return out
        return run
    latents = t[f"activations.{layer}.{LATENT_ACT[kind]}"]
    which = AE_OF[kind]
    dec = t[f"autoencoders.{which}.{layer}.decoder_weight"]
    w = t[f"weights.{layer}.mlp.to_residual"]
    through_mlp = spec["autoencoders"][which]["input"] == "mlp_post_act"
    tok, i = idx

    def run():
        decoded = np.einsum("t,f->tf", latents[:, i], dec[i])  # latent i decoded at every token
        x = decoded[tok]
        out = np.zeros((T_, d_model), np.float32)
        out[tok % T_] = np.einsum("f,fm->m", x, w) if through_mlp else x
        return out
    return run


def main():
    fixtures = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_FIXTURES
    with open(os.path.join(fixtures, "tdb_tiny.json")) as f:
        spec = json.load(f)
    t = read_safetensors(os.path.join(fixtures, "tdb_tiny.safetensors"))
    dims = {k: spec["model"][k] for k in ("n_layers", "d_model", "n_heads", "d_head", "d_ff")}
    T_ = spec["model"]["n_tokens"]

    def model_for(kind):
        m = nw.Model(**dims)
        for L in range(dims["n_layers"]):
            m.set_weight("mlp.to_residual", L, t[f"weights.{L}.mlp.to_residual"], copy=False)
            m.set_weight("attn.to_residual", L, t[f"weights.{L}.attn.to_residual"], copy=False)
            aes = {"single": [("autoencoder_latent", "mlp")],
                   "multi": [("mlp_autoencoder_latent", "mlp"), ("attention_autoencoder_latent", "attention")]}.get(kind, [])
            for nt, which in aes:
                m.set_autoencoder(nt, L, t[f"autoencoders.{which}.{L}.decoder_weight"],
                                  input=spec["autoencoders"][which]["input"], copy=False)
        return m

    models = {k: model_for(k) for k in ("none", "single", "multi")}
    store = nw.ActivationStore()
    for L in range(dims["n_layers"]):
        for name in ("mlp.post_act", "attn.qk_probs", "attn.v", *LATENT_ACT.values()):
            store.put(name, L, t[f"activations.{L}.{name}"])

    print(f"nodewrite {nw.__version__} (libnodewrite {nw.library_version()}, ABI {nw.abi_version()}), numpy {np.__version__}")
    print(f"fixture model: {dims['n_layers']} layers, d_model {dims['d_model']}, {dims['n_heads']} heads x {dims['d_head']}, "
          f"d_ff {dims['d_ff']}, {T_} tokens; outputs of the original ({spec['source'].split()[0]})\n")

    all_ok = True
    worst = 0.0
    for case in spec["cases"]:
        if "error" in case:
            continue
        node = nw.NodeIndex(case["node_type"], case["layer"], tuple(case["tensor_indices"]))
        out = nw.node_write(models[case["autoencoders"]], store, node)
        exp = t[case["expected"]]
        worst = max(worst, float(np.max(np.abs(out - exp))) / max(1.0, float(np.max(np.abs(exp)))))

    for kind in nw.NODE_TYPES:
        case = next(c for c in spec["cases"] if c["node_type"] == kind and "error" not in c)
        node = nw.NodeIndex(kind, case["layer"], tuple(case["tensor_indices"]))
        model = models[case["autoencoders"]]
        deriver = nw.NodeWriteDeriver(model, node)
        out = deriver.write(store)
        vec, row = deriver.write_vector(store)
        exp = t[case["expected"]]
        diff = float(np.max(np.abs(out - exp)))
        ok = diff <= 1e-5 * max(1.0, float(np.max(np.abs(exp)))) and not np.any(np.delete(out, row, 0))
        all_ok &= ok
        top = np.argsort(-np.abs(vec))[:5]
        orig = original_path(t, spec, case)
        assert np.max(np.abs(orig() - exp)) <= 1e-5 * max(1.0, float(np.max(np.abs(exp))))
        med = per_call_medians({
            "nodewrite": lambda: deriver.write(store),
            "node_write": lambda: nw.node_write(model, store, node),
            "numpy": orig,
        }, batches=60, calls=50)
        ae = f", autoencoders: {case['autoencoders']}" if case["autoencoders"] != "none" else ""
        print(f"{kind}  {case['id']}: layer {case['layer']}, indices {tuple(case['tensor_indices'])}{ae}")
        print(f"  write vector at token {row}: norm {np.linalg.norm(vec):.6f}")
        print("  top channels: " + ", ".join(f"{int(c)}: {vec[c]:+.5f}" for c in top))
        print(f"  vs original: max |diff| = {diff:.2e} ({'ok' if ok else 'MISMATCH'}; zeros off token row: "
              f"{'yes' if not np.any(np.delete(out, row, 0)) else 'NO'})")
        print(f"  time per call: deriver.write {fmt_time(med['nodewrite'])}, node_write {fmt_time(med['node_write'])}, "
              f"numpy original path {fmt_time(med['numpy'])}  ({med['numpy'] / med['nodewrite']:.1f}x)\n")

    # The same comparison at GPT-2-small width (768, 12 heads x 64) with 128 tokens: the original's
    # path builds a (128, 128, 12, 64) weighted-value tensor (50 MB) to use 64 numbers of it.
    T2, H2, DH2, DM2 = 128, 12, 64, 768
    rng = np.random.default_rng(0)
    probs = rng.random((T2, T2, H2), dtype=np.float32)
    v = rng.standard_normal((T2, H2, DH2), dtype=np.float32)
    w_o = rng.standard_normal((H2, DH2, DM2), dtype=np.float32) * 0.02
    big = nw.Model(n_layers=1, d_model=DM2, n_heads=H2, d_head=DH2, d_ff=4, causal=False)  # a full random pattern
    big.set_weight("attn.to_residual", 0, w_o, copy=False)
    big_store = nw.ActivationStore()
    big_store.put("attn.qk_probs", 0, probs)
    big_store.put("attn.v", 0, v)
    q, k, h = 100, 37, 5
    big_deriver = nw.NodeWriteDeriver(big, nw.NodeIndex("attention_head", 0, (q, k, h)))

    def big_original():
        weighted = np.einsum("qkh,khd->qkhd", probs, v)
        out = np.zeros((T2, DM2), np.float32)
        out[q] = np.einsum("d,dm->m", weighted[q, k, h], w_o[h])
        return out

    diff = float(np.max(np.abs(big_deriver.write(big_store) - big_original())))
    med = per_call_medians({"nodewrite": lambda: big_deriver.write(big_store), "numpy": big_original},
                           batches=7, calls=2, warmup=1)
    print(f"attention_head at d_model {DM2}, {H2} heads x {DH2}, T = {T2} (random, seeded): max |diff| = {diff:.2e}; "
          f"deriver.write {fmt_time(med['nodewrite'])}, numpy original path {fmt_time(med['numpy'])} "
          f"({med['numpy'] / med['nodewrite']:.0f}x)\n")

    n_ok = sum(1 for c in spec["cases"] if "error" not in c)
    print(f"all {n_ok} fixture cases: worst max|diff| / max(1, max|orig|) = {worst:.2e} (tolerance 1e-5)")
    for case in spec["cases"]:
        if "error" not in case:
            continue
        node = nw.NodeIndex(case["node_type"], case["layer"], tuple(case["tensor_indices"]))
        try:
            nw.node_write(models[case["autoencoders"]], store, node)
            print(f"  {case['id']}: original raised {case['error']}, nodewrite did NOT raise")
            all_ok = False
        except nw.NodeWriteError as e:
            print(f"  {case['id']}: original raised {case['error']:14s} nodewrite raised {type(e).__name__}: {e}")
    if not all_ok or worst > 1e-5:
        sys.exit(1)


if __name__ == "__main__":
    main()

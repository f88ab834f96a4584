#!/usr/bin/env python3
"""Writes the checkpoint fixtures of Tests/NodeWriteTests/Fixtures/checkpoints/ with the
real producers, offline, on tiny random models:

  gpt2/          transformers GPT2LMHeadModel.save_pretrained(safe_serialization=True):
                 model.safetensors ("transformer." prefix, lm_head tied and not saved) + config.json
  gpt2_f16/      transformers GPT2Model (no prefix) in float16, save_pretrained: F16 tensors
  tl/            transformer_lens HookedTransformer(HookedTransformerConfig) ->
                 safetensors.torch.save_file(model.state_dict()) (has BOOL masks too)
  sae_resid/     sae_lens StandardSAE on blocks.1.hook_resid_post, save_model (cfg.json + sae_weights.safetensors)
  sae_mlp/       sae_lens StandardSAE on blocks.0.mlp.hook_post (d_in = d_ff)
  expected.safetensors
                 every weight view nodewrite must see, in TDB's layouts, as float32, computed
                 with torch from the same weights: "<fixture>.attn.<L>" (n_heads, d_head, d_model),
                 "<fixture>.mlp.<L>" (d_ff, d_model), "<fixture>.unembedding" (d_model, n_vocab),
                 "<fixture>.ln_final" (d_model,), "<sae>.decoder" (d_sae, d_in).

Run it with a Python that has torch, transformers, transformer_lens, sae_lens and safetensors,
e.g. the ecosystem venv:
  make .venv-eco TORCH_WHEEL=/path/to/torch-...+cpu-....whl   # torch from the CPU wheel first, then the rest
  .venv-eco/bin/python tools/make_checkpoint_fixtures.py
Seeded: reruns give the same weights (with the same package versions).
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "NodeWriteTests", "Fixtures",
                   "checkpoints")
N_LAYER, D_MODEL, N_HEAD, D_FF, N_VOCAB, N_CTX = 2, 32, 4, 64, 50, 16
D_HEAD = D_MODEL // N_HEAD


def fresh(name):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def f32(t):
    return t.detach().to(torch.float32).contiguous().clone()


def gpt2(expected):
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

    cfg = GPT2Config(n_layer=N_LAYER, n_embd=D_MODEL, n_head=N_HEAD, n_inner=D_FF, vocab_size=N_VOCAB,
                     n_positions=N_CTX, bos_token_id=0, eos_token_id=0)
    for name, cls, dtype, prefix in [("gpt2", GPT2LMHeadModel, torch.float32, "transformer."),
                                     ("gpt2_f16", GPT2Model, torch.float16, "")]:
        torch.manual_seed(1 if name == "gpt2" else 2)
        model = cls(cfg).to(dtype).eval()
        # Non-trivial final gains (they start at 1).
        with torch.no_grad():
            base = model.transformer if prefix else model
            base.ln_f.weight.copy_(torch.randn(D_MODEL) * 0.5 + 1)
        path = fresh(name)
        model.save_pretrained(path, safe_serialization=True)
        base = model.transformer if prefix else model
        for L, block in enumerate(base.h):
            # Conv1D weight (in, out) = (n_heads * d_head, d_model) -> (n_heads, d_head, d_model)
            expected[f"{name}.attn.{L}"] = f32(block.attn.c_proj.weight.reshape(N_HEAD, D_HEAD, D_MODEL))
            expected[f"{name}.mlp.{L}"] = f32(block.mlp.c_proj.weight)
        expected[f"{name}.unembedding"] = f32(base.wte.weight.T)
        expected[f"{name}.ln_final"] = f32(base.ln_f.weight)


def transformer_lens(expected):
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(3)
    cfg = HookedTransformerConfig(n_layers=N_LAYER, d_model=D_MODEL, n_heads=N_HEAD, d_head=D_HEAD, d_mlp=D_FF,
                                  d_vocab=N_VOCAB, n_ctx=N_CTX, act_fn="gelu", normalization_type="LN", seed=3)
    model = HookedTransformer(cfg).eval()
    with torch.no_grad():
        model.ln_final.w.copy_(torch.randn(D_MODEL) * 0.5 + 1)
    path = fresh("tl")
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(path, "model.safetensors"))
    for L in range(N_LAYER):
        expected[f"tl.attn.{L}"] = f32(model.blocks[L].attn.W_O)
        expected[f"tl.mlp.{L}"] = f32(model.blocks[L].mlp.W_out)
    expected["tl.unembedding"] = f32(model.unembed.W_U)
    expected["tl.ln_final"] = f32(model.ln_final.w)


def saelens(expected):
    from sae_lens import StandardSAE, StandardSAEConfig

    for name, hook, d_in, d_sae, seed in [("sae_resid", "blocks.1.hook_resid_post", D_MODEL, 48, 4),
                                          ("sae_mlp", "blocks.0.mlp.hook_post", D_FF, 40, 5)]:
        torch.manual_seed(seed)
        cfg = StandardSAEConfig(d_in=d_in, d_sae=d_sae)
        cfg.metadata.hook_name = hook
        cfg.metadata.hook_layer = int(hook.split(".")[1])
        cfg.metadata.model_name = "tiny-random"
        sae = StandardSAE(cfg)
        with torch.no_grad():
            for p in sae.parameters():
                p.copy_(torch.randn_like(p))
        path = fresh(name)
        sae.save_model(path)
        expected[f"{name}.decoder"] = f32(sae.W_dec)


def main():
    import importlib.metadata as md

    expected = {}
    gpt2(expected)
    transformer_lens(expected)
    saelens(expected)
    versions = {p: md.version(p) for p in ["torch", "transformers", "transformer_lens", "sae_lens", "safetensors"]}
    meta = {"generator": "tools/make_checkpoint_fixtures.py", **versions,
            "dims": json.dumps({"n_layers": N_LAYER, "d_model": D_MODEL, "n_heads": N_HEAD, "d_head": D_HEAD,
                                "d_ff": D_FF, "n_vocab": N_VOCAB})}
    save_file(expected, os.path.join(OUT, "expected.safetensors"), metadata=meta)
    total = 0
    for root, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
            print(os.path.relpath(os.path.join(root, f), OUT), os.path.getsize(os.path.join(root, f)))
    print("total", total, "bytes;", versions, file=sys.stderr)


if __name__ == "__main__":
    main()

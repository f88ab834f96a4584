#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/fuzz_safetensors.c into fuzz/corpus_safetensors/ (Python
standard library only). Each seed is: mode byte, 2-byte little-endian JSON length, the JSON
(config.json or SAELens cfg.json), then a safetensors file. Small valid files of every layout
the loaders read, in every dtype they accept, plus the committed SAELens fixture."""
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus_safetensors")
CKPT = os.path.join(HERE, "..", "Tests", "NodeWriteTests", "Fixtures", "checkpoints")
PACK = {"F32": "<f", "F64": "<d"}


def tensor_bytes(dtype, count, k):
    vals = [((i * 7 + k) % 13) * 0.125 - 0.75 for i in range(count)]
    if dtype in PACK:
        return b"".join(struct.pack(PACK[dtype], v) for v in vals)
    if dtype == "F16":
        return b"".join(struct.pack("<e", v) for v in vals)
    if dtype == "BF16":
        return b"".join(struct.pack("<f", v)[2:] for v in vals)
    size = {"I64": 8, "BOOL": 1, "U8": 1}[dtype]
    return bytes((i % 2) for i in range(count * size))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for k, (name, dtype, shape) in enumerate(tensors):
        n = 1
        for s in shape:
            n *= s
        b = tensor_bytes(dtype, n, k)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def seed(mode, js, file):
    j = json.dumps(js).encode() if isinstance(js, (dict, list)) else (js or b"")
    return bytes([mode]) + struct.pack("<H", len(j)) + j + file


def tl(dtype="F32", layers=2, extra=()):
    t = []
    for L in range(layers):
        t += [(f"blocks.{L}.attn.W_O", dtype, [2, 2, 4]), (f"blocks.{L}.mlp.W_out", dtype, [6, 4])]
    return t + [("unembed.W_U", dtype, [4, 5]), ("ln_final.w", dtype, [4])] + list(extra)


def gpt2(dtype="F32", prefix="", layers=2):
    t = []
    for L in range(layers):
        t += [(f"{prefix}h.{L}.attn.c_proj.weight", dtype, [4, 4]), (f"{prefix}h.{L}.mlp.c_proj.weight", dtype, [6, 4]),
              (f"{prefix}h.{L}.attn.c_attn.weight", dtype, [4, 12])]
    return t + [(f"{prefix}wte.weight", dtype, [5, 4]), (f"{prefix}ln_f.weight", dtype, [4])]


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = []
    for dt in ["F32", "F16", "BF16", "F64"]:
        seeds.append(seed(0, None, safetensors(tl(dt))))
        seeds.append(seed(0, None, safetensors(gpt2(dt), {"format": "pt", "n_head": "2"})))
    seeds.append(seed(0, None, safetensors(tl(extra=[("blocks.0.attn.mask", "BOOL", [3, 3]), ("pos", "I64", [2])]))))
    seeds.append(seed(0, {"n_head": 2, "n_layer": 2, "n_embd": 4, "n_inner": 6}, safetensors(gpt2(prefix="transformer."))))
    seeds.append(seed(0, {"n_head": 1, "n_inner": None}, safetensors(gpt2(layers=1))))
    seeds.append(seed(0, None, safetensors([("pad", "U8", [1])] + tl(layers=1))))  # misaligned: copied
    sae = safetensors([("W_dec", "F32", [3, 4]), ("W_enc", "F32", [4, 3]), ("b_dec", "F32", [4])])
    sae_mlp = safetensors([("W_dec", "F16", [3, 6])])
    for mode, cfg, f in [
        # mode: 1 | node type << 1 | (layer + 1) << 4
        (1 | (2 << 1) | (2 << 4), {"hook_name": "blocks.1.hook_resid_post", "d_in": 4, "d_sae": 3}, sae),
        (1 | (3 << 1) | (1 << 4), {"metadata": {"hook_name": "blocks.0.mlp.hook_post"}}, sae_mlp),
        (1 | (4 << 1) | (2 << 4), {"hook_name": "blocks.1.hook_mlp_out"}, sae),
        (1 | (2 << 1) | (2 << 4), {"hook_name": "blocks.1.attn.hook_z"}, sae),
    ]:
        seeds.append(seed(mode, cfg, f))
    # The committed SAELens fixture (d_in 32) on the fuzz model (d_model 4): a shape mismatch.
    with open(os.path.join(CKPT, "sae_resid", "cfg.json"), "rb") as c, \
            open(os.path.join(CKPT, "sae_resid", "sae_weights.safetensors"), "rb") as w:
        seeds.append(seed(1 | (2 << 1) | (2 << 4), c.read(), w.read()))
    for s in seeds:
        name = hashlib.sha1(s).hexdigest()
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(s)
    print(len(seeds), "seeds in", OUT)


if __name__ == "__main__":
    main()

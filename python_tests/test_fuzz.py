"""Random inputs through the whole Python API (fixed seeds, bounded): every call either succeeds
or raises a nodewrite.NodeWriteError; the interpreter never crashes (a crash fails the run).
Also: the installed package loads its bundled libnodewrite.so with no environment at all."""

import os
import subprocess
import sys

import numpy as np
import pytest

import nodewrite as nw

NAMES_NODE = list(nw.NODE_TYPES) + ["", "mlp", "attention_head ", None, 1]
NAMES_ACT = list(nw.ACTIVATIONS) + ["attn", "", None]
NAMES_W = list(nw.WEIGHTS) + ["attn.v", ""]
INPUTS = ["mlp_post_act", "resid_delta_attn", "resid_post_embedding", "x", None]
DTYPES = [np.float32, np.float16, np.float64, np.int32, np.uint8, np.complex64, ">f4"]
EDGE = [0, 1, 2, 3, 5, 7, -1, -2, -8, 2**31, 2**63 - 1, -(2**63), 2**63, 2**64]


def strided_view(rng, shape, dtype):
    """An array of the given shape with random strides: transposed storage, reversed axes,
    zero strides or a stepped slice."""
    r = rng.random()
    if r < 0.25 and len(shape) >= 2:
        base = np.asarray(rng.standard_normal(shape[::-1]), dtype=dtype)
        return base.transpose(tuple(range(len(shape)))[::-1])
    base = np.asarray(rng.standard_normal(tuple(2 * n for n in shape)), dtype=dtype)
    view = base[tuple(slice(None, None, 2) for _ in shape)]
    if r < 0.5 and shape and shape[0] > 0:
        view = view[::-1]
    elif r < 0.6 and shape:
        view = np.lib.stride_tricks.as_strided(view, shape=view.shape, strides=(0,) + view.strides[1:])
    return view


def random_array(rng, shape=None):
    """Mostly (70%) the right shape and a float dtype; otherwise anything."""
    if shape is not None and rng.random() < 0.7:
        dtype = [np.float32, np.float16, np.float64][int(rng.integers(3))]
        return strided_view(rng, shape, dtype)
    ndim = int(rng.integers(0, 5))
    shape = tuple(int(rng.choice([0, 1, 2, 3, 4, 5, 7, 8])) for _ in range(ndim))
    dtype = DTYPES[int(rng.integers(len(DTYPES)))]
    if ndim == 0:
        return np.asarray(1.0, dtype=dtype)
    return strided_view(rng, shape, dtype) if np.dtype(dtype).kind == "f" else np.zeros(shape, dtype)


def small(rng):
    return int(rng.integers(1, 6))


def expected_shape(name, dims, T, n_latents):
    return {
        "mlp.to_residual": (dims["d_ff"], dims["d_model"]),
        "attn.to_residual": (dims["n_heads"], dims["d_head"], dims["d_model"]),
        "mlp.post_act": (T, dims["d_ff"]),
        "attn.qk_probs": (T, T, dims["n_heads"]),
        "attn.v": (T, dims["n_heads"], dims["d_head"]),
        "online_autoencoder_latent": (T, n_latents),
        "online_mlp_autoencoder_latent": (T, n_latents),
        "online_attention_autoencoder_latent": (T, n_latents),
    }.get(name)


@pytest.mark.parametrize("seed", range(8))
def test_random_calls_never_crash(seed):
    rng = np.random.default_rng(seed)
    dims = dict(n_layers=small(rng), d_model=small(rng), n_heads=small(rng), d_head=small(rng), d_ff=small(rng))
    model = nw.Model(**dims)
    store = nw.ActivationStore()
    keep = []
    ok = failed = derived = 0

    def pick(seq):
        return seq[int(rng.integers(len(seq)))]

    T = int(rng.integers(1, 5))
    n_latents = small(rng)
    layer = lambda: int(rng.integers(-1, dims["n_layers"] + 1))
    for _ in range(3000):
        op = int(rng.integers(7))
        try:
            if op == 0:
                name = pick(NAMES_W)
                keep.append(random_array(rng, expected_shape(name, dims, T, n_latents)))
                model.set_weight(name, layer(), keep[-1], copy=bool(rng.integers(2)))
            elif op == 1:
                inp = pick(INPUTS)
                width = dims["d_ff"] if inp == "mlp_post_act" else dims["d_model"]
                model.set_autoencoder(pick(NAMES_NODE), layer(), random_array(rng, (n_latents, width)),
                                      input=inp, copy=bool(rng.integers(2)))
            elif op in (2, 3):
                name = pick(NAMES_ACT)
                store.put(name, layer(), random_array(rng, expected_shape(name, dims, T, n_latents)))
            else:
                nt = pick(NAMES_NODE)
                n_idx = int(rng.integers(0, 5))
                if rng.random() < 0.6:
                    n_idx = 3 if nt == "attention_head" else 2
                idx = tuple(pick(EDGE) if rng.random() < 0.1 else int(rng.integers(-3, 6)) for _ in range(n_idx))
                node = nw.NodeIndex(nt, layer() if rng.random() < 0.9 else pick(EDGE), idx)
                if op == 4:
                    nw.node_write(model, store, node)
                elif op == 5:
                    d = nw.NodeWriteDeriver(model, node)
                    d.derive_vector(store)
                    d.derive(store)
                else:
                    nw.node_write_vectors(model, store, [node, node])
            ok += 1
            derived += op >= 4
        except nw.NodeWriteError:
            failed += 1
    print(f"seed {seed}: {ok} calls succeeded ({derived} derives), {failed} raised")
    assert ok + failed == 3000 and failed > 0 and derived > 0


def test_installed_package_needs_no_environment(tmp_path):
    code = ("import nodewrite, os; lib = os.path.join(os.path.dirname(nodewrite.__file__), 'libnodewrite.so'); "
            "maps = open('/proc/self/maps').read(); "
            "assert os.path.realpath(lib) in maps, 'bundled libnodewrite.so not the one loaded'; "
            "print(nodewrite.library_version())")
    r = subprocess.run([sys.executable, "-c", code], env={}, cwd=str(tmp_path),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == nw.library_version()

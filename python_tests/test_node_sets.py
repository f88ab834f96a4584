"""Node sets (issue 9) through the Python API: nodewrite.node_writes, its index helpers,
set_num_threads, the one-crossing node_write, and the hostile-caller classes for the new entry
points.

- A node set equals the single-node writes of its nodes: they share the library's kernel, so
  bit-identity is tested (the issue's bound, 1e-6 * max(1, |w|), is checked too).
- Every parity fixture case through a one-node set, within the parity tolerance.
- The helpers give exactly the expected index arrays.
- v1's whole-layer sums as one node set per layer.
- Bad sets raise the matching NodeWriteError subclass and leave out untouched.
"""

from __future__ import annotations

import numpy as np
import pytest

import nodewrite as nw
import nw_fixtures as F
from nw_child import run_in_child

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")

CASES = F.cases()
OK_CASES = [c for c in CASES if "error" not in c]
AE_KIND = {"autoencoder_latent": "single", "mlp_autoencoder_latent": "multi",
           "attention_autoencoder_latent": "multi", "mlp_neuron": "none", "attention_head": "none"}


@pytest.fixture(scope="module")
def models():
    return {kind: F.make_model(kind) for kind in ("none", "single", "multi")}


@pytest.fixture(scope="module")
def store():
    return F.make_store()


def dims():
    return F.dims()


def all_nodes(node_type, layer, model):
    """Every node of a type at a layer (tokens x the second index), as an (n, k) int64 array."""
    T = F.n_tokens()
    d = dims()
    if node_type == "attention_head":
        q, k, h = np.meshgrid(np.arange(T), np.arange(T), np.arange(d["n_heads"]), indexing="ij")
        return np.stack([q.ravel(), k.ravel(), h.ravel()], axis=1).astype(np.int64)
    if node_type == "mlp_neuron":
        n = d["d_ff"]
    else:
        n = model.autoencoders()[(node_type, layer)]["shape"][0]
    t, i = np.meshgrid(np.arange(T), np.arange(n), indexing="ij")
    return np.stack([t.ravel(), i.ravel()], axis=1).astype(np.int64)


# ------------------------------------------------------------------------ equality with singles


@pytest.mark.parametrize("node_type", nw.NODE_TYPES)
def test_set_equals_single_node_writes_bitwise(node_type, models, store):
    model = models[AE_KIND[node_type]]
    for layer in range(dims()["n_layers"]):
        idx = all_nodes(node_type, layer, model)
        rng = np.random.default_rng(layer)
        idx = idx[rng.permutation(len(idx))[:200]]
        # every index in range (resolved in one pass), then some negative ones too (they count
        # from the end; resolved node by node): the same writes
        in_range = nw.node_writes(model, store, node_type, layer, idx)
        idx[::7] -= np.array([F.n_tokens()] + [0] * (idx.shape[1] - 1))
        out = nw.node_writes(model, store, node_type, layer, idx)
        assert np.array_equal(out, in_range)
        assert out.shape == (len(idx), dims()["d_model"]) and out.dtype == np.float32
        assert out.flags.c_contiguous
        for i, row in enumerate(idx):
            single = nw.node_write(model, store, nw.NodeIndex(node_type, layer, tuple(int(v) for v in row)))
            token = int(row[0]) % F.n_tokens()
            w = single[token]
            assert np.abs(out[i] - w).max() <= 1e-6 * max(1.0, float(np.abs(w).max()))
            assert np.array_equal(out[i], w), f"row {i} {tuple(row)} differs from node_write's"


@pytest.mark.parametrize("case", OK_CASES, ids=[c["id"] for c in OK_CASES])
def test_parity_cases_as_one_node_sets(case, models, store):
    expected = F.tensors()[case["expected"]]
    model = models[case["autoencoders"]]
    token = F.token_row(case)
    out = nw.node_writes(model, store, case["node_type"], case["layer"], [case["tensor_indices"]])
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(out[0].astype(np.float64) - expected[token]).max() <= F.REL_TOL * scale
    # and node_write (now one nw_node_write_sized crossing) still matches
    F.assert_matches(nw.node_write(model, store, F.node_of(case)), expected, token)


def test_index_dtypes_and_containers_agree(models, store):
    model = models["none"]
    idx = all_nodes("attention_head", 1, model)[::5]
    ref = nw.node_writes(model, store, "attention_head", 1, idx)
    for variant in (idx.astype(np.int32), idx.astype(np.int16), idx.astype(np.uint8), idx.tolist(),
                    [tuple(r) for r in idx.tolist()], np.asfortranarray(idx), idx[:, :][::1],
                    [[np.int64(v) for v in r] for r in idx]):
        assert np.array_equal(nw.node_writes(model, store, "attention_head", 1, variant), ref)
    strided = np.repeat(idx, 2, axis=0)[::2]
    assert not strided.flags.c_contiguous or strided.base is not None
    assert np.array_equal(nw.node_writes(model, store, "attention_head", 1, strided), ref)
    if torch is not None:
        assert np.array_equal(nw.node_writes(model, store, "attention_head", 1, torch.from_numpy(idx)), ref)
        assert np.array_equal(nw.node_writes(model, store, "attention_head", 1, torch.from_numpy(idx).int()), ref)
        assert np.array_equal(nw.node_writes(model, store, "attention_head", 1, torch.from_numpy(idx).t().contiguous().t()), ref)


def test_empty_set(models, store):
    out = nw.node_writes(models["none"], store, "mlp_neuron", 0, np.zeros((0, 2), np.int64))
    assert out.shape == (0, dims()["d_model"]) and out.dtype == np.float32
    assert nw.node_writes(models["none"], store, "mlp_neuron", 0, []).shape == (0, dims()["d_model"])


# ------------------------------------------------------------------------------- out=


def test_out_numpy_written_in_place_and_returned(models, store):
    idx = nw.neurons_at_token(3, models["none"])
    ref = nw.node_writes(models["none"], store, "mlp_neuron", 2, idx)
    out = np.full((len(idx), dims()["d_model"]), np.nan, np.float32)
    r = nw.node_writes(models["none"], store, "mlp_neuron", 2, idx, out=out)
    assert r is out and np.array_equal(out, ref)


@needs_torch
def test_out_torch_written_in_place_and_returned(models, store):
    idx = nw.neurons_at_token(3, models["none"])
    ref = nw.node_writes(models["none"], store, "mlp_neuron", 2, idx)
    out = torch.full((len(idx), dims()["d_model"]), float("nan"))
    r = nw.node_writes(models["none"], store, "mlp_neuron", 2, torch.from_numpy(idx), out=out)
    assert r is out and np.array_equal(out.numpy(), ref)


def test_out_is_keyword_only(models, store):
    out = np.zeros((1, dims()["d_model"]), np.float32)
    with pytest.raises(TypeError):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, [[0, 0]], out)


# --------------------------------------------------------------------------------- helpers


def test_helpers_give_exactly_the_expected_arrays(models):
    m = models["multi"]
    H, d_ff = dims()["n_heads"], dims()["d_ff"]
    got = nw.keys_and_heads_at_query(4, H)
    want = np.array([(4, k, h) for h in range(H) for k in range(5)], np.int64)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert np.array_equal(nw.keys_and_heads_at_query(4, m), want)
    assert np.array_equal(nw.keys_and_heads_at_query(0, 2), np.array([[0, 0, 0], [0, 0, 1]]))
    got = nw.heads_at(5, 2, m)
    assert got.dtype == np.int64 and np.array_equal(got, np.array([(5, 2, h) for h in range(H)]))
    got = nw.neurons_at_token(6, m)
    assert got.dtype == np.int64 and np.array_equal(got, np.array([(6, n) for n in range(d_ff)]))
    assert np.array_equal(nw.neurons_at_token(1, 3), np.array([[1, 0], [1, 1], [1, 2]]))
    n_lat = F.spec()["autoencoders"]["attention"]["n_latents"]
    got = nw.latents_at_token(2, m, "attention_autoencoder_latent", 1)
    assert got.dtype == np.int64 and np.array_equal(got, np.array([(2, i) for i in range(n_lat)]))
    assert np.array_equal(nw.latents_at_token(2, 4), np.array([(2, i) for i in range(4)]))
    with pytest.raises(nw.NodeWriteValueError):
        nw.latents_at_token(2, m)  # a Model needs the node type
    with pytest.raises(nw.NodeWriteValueError):
        nw.latents_at_token(2, m, "attention_autoencoder_latent")  # set at 3 layers: which?
    with pytest.raises(nw.NodeWriteKeyError):
        nw.latents_at_token(2, models["none"], "attention_autoencoder_latent", 0)
    with pytest.raises(nw.NodeWriteIndexError):
        nw.keys_and_heads_at_query(-1, H)
    with pytest.raises(nw.NodeWriteValueError):
        nw.neurons_at_token(1.0, 3)


def test_helpers_feed_node_writes(models, store):
    m = models["none"]
    q = F.n_tokens() - 1
    out = nw.node_writes(m, store, "attention_head", 0, nw.keys_and_heads_at_query(q, m))
    H = dims()["n_heads"]
    assert out.shape == (H * (q + 1), dims()["d_model"])
    # head-major: row h*(q+1) + k is node (q, k, h)
    w = nw.node_write(m, store, nw.NodeIndex("attention_head", 0, (q, 2, 1)))[q]
    assert np.array_equal(out[1 * (q + 1) + 2], w)


# ----------------------------------------------------------------------- whole-layer sums


def test_whole_layer_sums_as_one_set_per_layer(models, store):
    """v1's whole-layer checks, each layer one node set: the MLP neurons at a token sum to
    post_act @ W_out; every (key, head) at a query sums to sum_k p[q,k,h] v[k,h] @ W_O[h]."""
    t = F.tensors()
    m = models["none"]
    for layer in range(dims()["n_layers"]):
        post = t[f"activations.{layer}.mlp.post_act"].astype(np.float64)
        w_out = t[f"weights.{layer}.mlp.to_residual"].astype(np.float64)
        p = t[f"activations.{layer}.attn.qk_probs"].astype(np.float64)
        v = t[f"activations.{layer}.attn.v"].astype(np.float64)
        w_o = t[f"weights.{layer}.attn.to_residual"].astype(np.float64)
        T = F.n_tokens()
        idx = np.concatenate([nw.neurons_at_token(tok, m) for tok in range(T)])
        out = nw.node_writes(m, store, "mlp_neuron", layer, idx).astype(np.float64)
        sums = out.reshape(T, dims()["d_ff"], -1).sum(axis=1)
        np.testing.assert_allclose(sums, post @ w_out, rtol=1e-5, atol=1e-5)
        idx = np.concatenate([nw.keys_and_heads_at_query(q, m) for q in range(T)])
        out = nw.node_writes(m, store, "attention_head", layer, idx).astype(np.float64)
        want = np.einsum("qkh,khd,hdm->qm", np.tril(p.transpose(2, 0, 1)).transpose(1, 2, 0), v, w_o)
        start = 0
        for q in range(T):
            n = dims()["n_heads"] * (q + 1)
            np.testing.assert_allclose(out[start:start + n].sum(axis=0), want[q], rtol=1e-5, atol=1e-5)
            start += n


# ------------------------------------------------------------------------------- bad sets


def _out(n):
    return np.full((n, dims()["d_model"]), 7.0, np.float32)


@pytest.mark.parametrize(
    "indices,exc",
    [
        ([[0, 0, 0]], nw.NodeWriteValueError),  # wrong k for mlp_neuron
        (np.zeros((2, 3), np.int64), nw.NodeWriteValueError),
        (np.zeros((2,), np.int64), nw.NodeWriteValueError),  # not 2-D
        ([[0, 0], [1]], nw.NodeWriteValueError),  # ragged
        ([[0, 0], [0, 192]], nw.NodeWriteIndexError),  # neuron out of range, in the last row
        ([[0, 0], [7, 0]], nw.NodeWriteIndexError),  # token out of range
        ([[0, 0], [-8, 0]], nw.NodeWriteIndexError),  # negative beyond -T
        (np.array([[0, 0], [0, 2**40]], np.int64), nw.NodeWriteIndexError),
        (np.array([[0, 2**63]], np.uint64), nw.NodeWriteIndexError),
        (np.zeros((2, 2), np.float32), nw.NodeWriteValueError),  # non-integer dtypes
        (np.zeros((2, 2), np.float64), nw.NodeWriteValueError),
        (np.zeros((2, 2), bool), nw.NodeWriteValueError),
        ([[0.0, 1.0]], nw.NodeWriteValueError),
        ("ab", nw.NodeWriteValueError),
        (None, nw.NodeWriteValueError),
    ],
)
def test_bad_sets_raise_and_leave_out_untouched(indices, exc, models, store):
    n = 2 if not isinstance(indices, (list, str)) or not indices else len(indices)
    if isinstance(indices, np.ndarray) and indices.ndim == 2:
        n = indices.shape[0]
    out = _out(n)
    before = out.copy()
    with pytest.raises(exc):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, indices, out=out)
    assert np.array_equal(out, before)


@pytest.mark.parametrize(
    "indices,names",
    [
        ([[0, 0], [0, 1], [0, 192]], r"nodes\[2\]: node\.indices\[1\] \(neuron\): index 192 "),
        ([[0, 0], [-1, 3], [7, 0], [0, 999]], r"nodes\[2\]: node\.indices\[0\] \(token\): index 7 "),
        ([[-8, 0], [0, 0]], r"nodes\[0\]: node\.indices\[0\] \(token\): index -8 "),
    ],
)
def test_bad_set_error_names_the_first_offending_node(indices, names, models, store):
    with pytest.raises(nw.NodeWriteIndexError, match=names):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, np.array(indices, np.int64))


@needs_torch
def test_bad_torch_index_dtypes(models, store):
    out = _out(1)
    for t in (torch.zeros((1, 2)), torch.zeros((1, 2), dtype=torch.bool), torch.zeros((1, 2), dtype=torch.float64)):
        with pytest.raises(nw.NodeWriteValueError):
            nw.node_writes(models["none"], store, "mlp_neuron", 0, t, out=out)
    assert np.all(out == 7.0)


def test_bad_out_raises_and_leaves_it_untouched(models, store):
    idx = [[0, 0], [1, 1]]
    d = dims()["d_model"]
    for out, exc in [
        (np.full((3, d), 7.0, np.float32), nw.NodeWriteValueError),  # shape
        (np.full((2, d + 1), 7.0, np.float32), nw.NodeWriteValueError),
        (np.full((2 * d,), 7.0, np.float32), nw.NodeWriteValueError),
        (np.full((2, d), 7.0, np.float64), nw.NodeWriteValueError),  # dtype
        (np.full((2, d), 7.0, np.float16), nw.NodeWriteValueError),
        (np.full((2, d), 7, np.int32), nw.NodeWriteValueError),
        (np.full((d, 2), 7.0, np.float32).T, nw.NodeWriteValueError),  # contiguity
        (np.full((2, 2 * d), 7.0, np.float32)[:, ::2], nw.NodeWriteValueError),
    ]:
        before = out.copy()
        with pytest.raises(exc):
            nw.node_writes(F.make_model("none"), store, "mlp_neuron", 0, idx, out=out)
        assert np.array_equal(out, before)
    ro = np.full((2, d), 7.0, np.float32)
    ro.setflags(write=False)
    with pytest.raises(nw.NodeWriteValueError):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, idx, out=ro)
    assert np.all(ro == 7.0)


@needs_torch
def test_bad_torch_out(models, store):
    idx = [[0, 0], [1, 1]]
    d = dims()["d_model"]
    for out in (torch.full((2, d), 7.0, dtype=torch.float64), torch.full((d, 2), 7.0).t(),
                torch.full((2, d), 7.0, requires_grad=True), torch.full((3, d), 7.0)):
        before = out.detach().clone()
        with pytest.raises(nw.NodeWriteValueError):
            nw.node_writes(models["none"], store, "mlp_neuron", 0, idx, out=out)
        assert torch.equal(out.detach(), before)


def test_missing_inputs_and_bad_names(models, store):
    with pytest.raises(nw.NodeWriteKeyError):
        nw.node_writes(models["none"], store, "mlp_autoencoder_latent", 0, [[0, 0]])
    with pytest.raises(nw.NodeWriteKeyError):
        nw.node_writes(models["none"], nw.ActivationStore(), "mlp_neuron", 0, [[0, 0]])
    with pytest.raises(nw.NodeWriteValueError):
        nw.node_writes(models["none"], store, "neuron", 0, [[0, 0]])
    with pytest.raises(nw.NodeWriteIndexError):
        nw.node_writes(models["none"], store, "mlp_neuron", 3, [[0, 0]])


# ------------------------------------------------------------------------------- threads


def test_thread_counts_give_identical_bits(models, store):
    m = models["multi"]
    before = nw.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            nw.set_num_threads(n)
            # the library may cap it (this branch's kernels are still single-threaded: 1)
            assert 1 <= nw.get_num_threads() <= n
            results.append(nw.node_writes(m, store, "attention_head", 2, all_nodes("attention_head", 2, m)))
        assert all(np.array_equal(results[0], r) for r in results[1:])
        with pytest.raises(nw.NodeWriteValueError):
            nw.set_num_threads(-1)
        with pytest.raises(nw.NodeWriteValueError):
            nw.set_num_threads(1.5)
    finally:
        nw.set_num_threads(0)
    assert nw.get_num_threads() >= 1


# ----------------------------------------------------------------------- hostile callers


def test_objects_made_by_new_are_refused(store):
    m = nw.Model.__new__(nw.Model)
    s = nw.ActivationStore.__new__(nw.ActivationStore)
    with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
        nw.node_writes(m, store, "mlp_neuron", 0, [[0, 0]])
    with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
        nw.node_writes(F.make_model("none"), s, "mlp_neuron", 0, [[0, 0]])
    with pytest.raises(nw.NodeWriteValueError, match="not initialised"):
        nw.keys_and_heads_at_query(0, m)  # reading n_heads of an uninitialised Model


@needs_torch
def test_torch_neg_and_conj_views_refused(models, store):
    idx = torch.tensor([[0, 0]])
    with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, torch._neg_view(idx))
    out = torch.full((1, dims()["d_model"]), 7.0)
    with pytest.raises(nw.NodeWriteValueError, match="negative bit"):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, [[0, 0]], out=torch._neg_view(out))
    assert torch.all(out == 7.0)
    c = torch.zeros((1, dims()["d_model"]), dtype=torch.complex64).conj()
    with pytest.raises(nw.NodeWriteValueError):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, [[0, 0]], out=c)


class _Interrupting:
    """A sequence whose __getitem__ (or whose items' __index__) raises KeyboardInterrupt."""

    def __init__(self, where):
        self.where = where

    def __len__(self):
        return 2

    def __getitem__(self, i):
        if i >= 2:
            raise IndexError(i)
        if self.where == "getitem" and i == 1:
            raise KeyboardInterrupt
        return [0, _Index()] if self.where == "index" and i == 1 else [0, 0]


class _Index:
    def __index__(self):
        raise KeyboardInterrupt


@pytest.mark.parametrize("where", ["getitem", "index"])
def test_keyboard_interrupt_in_indices_passes_through(where, models, store):
    out = _out(2)
    with pytest.raises(KeyboardInterrupt):
        nw.node_writes(models["none"], store, "mlp_neuron", 0, _Interrupting(where), out=out)
    assert np.all(out == 7.0)
    with pytest.raises(KeyboardInterrupt):
        nw.token_writes(models["none"], store, "mlp_neuron", 0, _Interrupting(where))


def test_fresh_threads_without_warmup_call_at_once():
    """A fresh process: many threads call node_writes and derive at the same moment, before any
    other call of the library (lazy state, the GIL release, the locks)."""
    run_in_child(
        """
        import threading
        import numpy as np
        import nodewrite as nw
        import nw_fixtures as F
        m = F.make_model("multi")
        s = F.make_store()
        T, d = F.n_tokens(), F.dims()["d_model"]
        g = np.random.default_rng(0).standard_normal((T, d)).astype(np.float32)
        s.put("resid.delta_mlp", 0, np.ones((T, d), np.float32))
        barrier = threading.Barrier(8)
        results, errors = {}, []
        def work(i):
            try:
                barrier.wait()
                if i % 2:
                    results[i] = nw.node_writes(m, s, "attention_head", 1, nw.keys_and_heads_at_query(T - 1, m))
                else:
                    results[i] = nw.derive(m, s, "unflattened_attn_write_to_final_residual_grad", 1, direction=g)
            except BaseException as e:
                errors.append(repr(e))
        ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert not errors, errors
        for i in range(2, 8):
            assert np.array_equal(results[i], results[i % 2]), i
        print("ok")
        """,
        timeout=120,
    )

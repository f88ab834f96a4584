"""nodewrite.ray.top_examples against the single-process loop (nodewrite.topk.local_top_examples),
on seeded random-weight HookedTransformers built offline; and the reduction's total order.

- bit for bit equal to the local loop for 1 and 2 workers and several batch sizes, on three
  derived scalars of different shapes, largest and smallest, numpy and Ray Dataset inputs;
- bad input: k <= 0 or larger than prompts x positions, unequal prompt lengths, an unknown DST,
  a layer out of range, a worker that raises (its message reaches the caller, Ray stays usable);
- threads: threads_per_worker; an actor's nodewrite threads follow torch's unless set.

Skipped (one reason) unless torch, transformer_lens and ray import: `make test-ecosystem`.
"""

from __future__ import annotations

import numpy as np
import pytest

import eco_support as E

if E.torch is None:  # pragma: no cover
    pytest.skip("transformer_lens not importable (run `make test-ecosystem`)", allow_module_level=True)
ray = pytest.importorskip("ray", reason="ray not importable (run `make test-ecosystem`)")

import nodewrite as nw  # noqa: E402
import nodewrite.ray as nwr  # noqa: E402
from nodewrite.topk import TopExamples, local_top_examples, merge, select  # noqa: E402

N, T = 24, 10


def small_model():
    """The model each actor builds (a module-level function: actors import this module)."""
    return E.tl_model(n_layers=2, d_model=32, n_heads=4, d_head=8, d_mlp=64, d_vocab=50, n_ctx=16)


@pytest.fixture(scope="module")
def ray_session():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"PYTHONPATH": __import__("os").path.dirname(__file__)}})
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def tokens():
    return np.random.default_rng(0).integers(0, 50, size=(N, T))


def same(a: dict, b: dict):
    assert set(a) == set(b)
    for l in a:
        for f in TopExamples._fields:
            x, y = getattr(a[l], f), getattr(b[l], f)
            assert x.shape == y.shape and x.dtype == y.dtype, (l, f, x.shape, y.shape)
            assert np.array_equal(x, y, equal_nan=True), (l, f)


CASES = [
    ("mlp_write_norm", None, True, 1),
    ("attn_write_norm_per_sequence_token", None, False, 2),
    ("unflattened_attn_write_to_final_residual_grad", "direction", True, 2),
]


@pytest.mark.parametrize("dst,direction,largest,workers", CASES)
def test_equals_the_single_process_loop(ray_session, model, tokens, dst, direction, largest, workers):
    d = None if direction is None else np.random.default_rng(1).standard_normal(32).astype(np.float32)
    ref = local_top_examples(model, tokens, dst, [0, 1], k=6, direction=d, largest=largest, batch_size=5)
    for batch_size in (7, 24):
        got = nwr.top_examples(small_model, tokens, dst, [0, 1], k=6, direction=d, largest=largest,
                               batch_size=batch_size, num_workers=workers)
        same(got, ref)
    p = 2 if nw.dst_info(dst).layout == "unflattened" else 1
    assert ref[0].position.shape[-1] == p


def test_ray_dataset_input_and_one_layer(ray_session, model, tokens):
    ds = ray.data.from_items([{"tokens": row} for row in tokens])
    got = nwr.top_examples(model, ds, "mlp_write_norm", 1, k=3, batch_size=8, num_workers=2)
    same(got, local_top_examples(model, tokens, "mlp_write_norm", 1, k=3))


def _late_first_block(batch, first):
    import time

    time.sleep(0.5 if np.array_equal(batch["tokens"][0], first) else 0.0)  # the first block finishes last
    return batch


def test_ray_dataset_rows_are_numbered_in_row_order(ray_session, model, tokens):
    """A dataset whose first block finishes last: prompt numbers are still row positions."""
    import functools

    assert not any(np.array_equal(row, tokens[0]) for row in tokens[1:])
    ds = ray.data.from_items([{"tokens": row} for row in tokens], override_num_blocks=4)
    ds = ds.map_batches(functools.partial(_late_first_block, first=tokens[0]), batch_size=None)
    got = nwr.top_examples(model, ds, "mlp_write_norm", 0, k=3, batch_size=8, num_workers=1)
    same(got, local_top_examples(model, tokens, "mlp_write_norm", 0, k=3))


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=0), "k = 0"),
    (dict(k=N * T + 1), "larger than the number of examples"),
    (dict(dst="no_such_dst"), "no_such_dst"),
    (dict(layers=[2]), "out of range"),
    (dict(threads_per_worker=0), "threads_per_worker"),
    (dict(num_workers=0), "num_workers"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_requests(ray_session, model, tokens, kwargs, match):
    args = dict(dst="mlp_write_norm", layers=[0], k=3)
    args.update(kwargs)
    with pytest.raises(nw.NodeWriteError, match=match):
        nwr.top_examples(model, tokens, args.pop("dst"), args.pop("layers"), **args)


def test_unequal_prompt_lengths(ray_session, model):
    with pytest.raises(nw.NodeWriteValueError, match="unequal lengths"):
        nwr.top_examples(model, [[1, 2, 3], [4, 5]], "mlp_write_norm", 0, k=1)


def test_a_worker_error_reaches_the_caller_and_ray_stays_usable(ray_session, model, tokens):
    bad = np.ones(31, np.float32)  # the direction is d_model = 32 long: the library refuses it in the worker
    with pytest.raises(nw.NodeWriteError, match="direction"):
        nwr.top_examples(small_model, tokens, "mlp_write_to_final_residual_grad", 0, k=2, direction=bad, num_workers=1)
    got = nwr.top_examples(small_model, tokens, "mlp_write_norm", 0, k=2, num_workers=1)
    same(got, local_top_examples(model, tokens, "mlp_write_norm", 0, k=2))


def test_threads_per_worker(ray_session, model, tokens):
    got = nwr.top_examples(small_model, tokens, "mlp_write_norm", [0, 1], k=4, batch_size=10, threads_per_worker=2)
    same(got, local_top_examples(model, tokens, "mlp_write_norm", [0, 1], k=4))


def _model_with_nodewrite_threads():
    nw.set_num_threads(__import__("os").cpu_count() + 1)  # not the default
    return small_model()


def test_an_actor_runs_nodewrite_on_torchs_threads(monkeypatch):
    """Unless told (threads_per_worker) or model() set them, nodewrite's threads in an actor are
    torch's (what Ray gives the actor), not every CPU of the machine."""
    import torch

    import os

    monkeypatch.delenv("NODEWRITE_NUM_THREADS", raising=False)
    saved = torch.get_num_threads(), nw.get_num_threads()
    try:
        torch.set_num_threads(1)
        nw.set_num_threads(0)  # the default: every CPU this process may use
        nwr._Worker(small_model, "mlp_write_norm", [0], 3, None, True)
        assert nw.get_num_threads() == torch.get_num_threads() == 1
        nwr._Worker(small_model, "mlp_write_norm", [0], 3, None, True, 2)
        assert nw.get_num_threads() == torch.get_num_threads() == 2
        torch.set_num_threads(1)
        nw.set_num_threads(0)
        nwr._Worker(_model_with_nodewrite_threads, "mlp_write_norm", [0], 3, None, True)
        assert nw.get_num_threads() == os.cpu_count() + 1 and torch.get_num_threads() == 1  # model() chose: kept
    finally:
        torch.set_num_threads(saved[0])
        nw.set_num_threads(saved[1])


# -------------------------------------------------------------------- the reduction alone


def test_total_order_ties_and_nan():
    v = np.array([[1.0, 3.0, 3.0, np.nan, 3.0, -1.0]], np.float32)
    prompt = np.array([5, 2, 2, 0, 1, 9])
    pos = np.array([[0], [4], [1], [0], [7], [0]])
    top = select(v, prompt, pos, 4, largest=True)
    assert top.values.tolist() == [[3.0, 3.0, 3.0, 1.0]]
    assert top.prompt.tolist() == [[1, 2, 2, 5]] and top.position[0, :, 0].tolist() == [7, 1, 4, 0]
    low = select(v, prompt, pos, 6, largest=False)
    assert np.isnan(low.values[0, -1]) and low.values[0, 0] == -1.0  # NaN after every number


def test_merge_is_independent_of_grouping():
    rng = np.random.default_rng(3)
    vals = rng.integers(0, 4, size=(5, 300)).astype(np.float32)  # many ties
    prompt = np.repeat(np.arange(30), 10)
    pos = np.tile(np.arange(10), 30)[:, None]
    whole = select(vals, prompt, pos, 7, True)
    for cut in (1, 50, 299):
        a = select(vals[:, :cut], prompt[:cut], pos[:cut], 7, True)
        b = select(vals[:, cut:], prompt[cut:], pos[cut:], 7, True)
        m = merge(b, a, 7, True)
        for f in TopExamples._fields:
            assert np.array_equal(getattr(m, f), getattr(whole, f))


@pytest.mark.parametrize("n_blocks", [1, 2, 3, 7, 8, 13])
def test_driver_tree_merge_equals_the_whole(n_blocks):
    """The driver's streaming tree (nodewrite.ray._fold) over blocks of the actors' shape equals
    one select over everything, for block counts that leave levels half full."""
    rng = np.random.default_rng(n_blocks)
    layers, k, per = [0, 2], 5, 4
    n = n_blocks * per
    vals = {l: rng.integers(0, 3, size=(6, n * 3)).astype(np.float32) for l in layers}
    prompt = np.repeat(np.arange(n), 3)
    pos = np.tile(np.arange(3), n)[:, None]
    blocks = []
    for b in range(n_blocks):
        block = {}
        for l in layers:
            cols = slice(b * per * 3, (b + 1) * per * 3)
            part = select(vals[l][:, cols], prompt[cols], pos[cols], k, True)
            block[f"values_{l}"], block[f"prompt_{l}"], block[f"position_{l}"] = (
                part.values[None], part.prompt[None], part.position[None])
        blocks.append(block)
    got = nwr._fold(iter(blocks), layers, k, True)
    for l in layers:
        whole = select(vals[l], prompt, pos, k, True)
        for f in TopExamples._fields:
            assert np.array_equal(getattr(got[l], f), getattr(whole, f))


# -------------------------------------------------- pickled models and stores in Ray's object store


def _derive_all_in_a_task(model, store):
    """In a Ray worker: every derive of the unpickled pair, and how the model holds its arrays."""
    import test_pickle as P

    from nodewrite import _core

    st = _core._model_state(model)
    from_object_store = [not a.base.flags.writeable for _, _, a, dt, _ in st["weights"]
                         if dt != "bfloat16" and isinstance(a.base, np.ndarray)]
    return P.derive_all(model, store), model.weights(), model.causal, from_object_store


@pytest.mark.parametrize("causal", [True, False])
def test_pickled_model_and_store_in_a_ray_task_bit_for_bit(ray_session, causal):
    import test_pickle as P

    m, keep = P.full_model(causal=causal, seed=11)
    s = P.full_store(seed=12, odd=causal)
    task = ray.remote(_derive_all_in_a_task)
    got, weights, got_causal, from_store = ray.get(task.remote(ray.put(m), ray.put(s)))
    P.same_derives(P.derive_all(m, s), got)
    assert got_causal is causal
    assert {k: v["shape"] for k, v in weights.items()} == {k: v["shape"] for k, v in m.weights().items()}
    # the worker's model borrows the object store's read-only buffers (zero copy), not copies
    assert from_store and all(from_store)

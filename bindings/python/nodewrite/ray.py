"""Derived scalars over many prompts on Ray: each node's top dataset examples.

::

    import ray, nodewrite.ray
    ray.init()                                   # yours: local, or ray.init(address=...) for a cluster
    top = nodewrite.ray.top_examples(lambda: HookedTransformer(cfg), tokens, "mlp_write_norm", [0, 1], k=20)
    top[0].values, top[0].prompt, top[0].position    # (d_mlp, 20), (d_mlp, 20), (d_mlp, 20, 1)

Ray Data runs the prompts through an actor pool: each actor builds the TransformerLens model
once (``model``, or ``model()`` when it is a zero-argument callable), the nodewrite model from it
(:func:`nodewrite.tl.model_from`), and reduces each batch to every node's top k before anything
leaves it; the driver merges the partial results as a binary tree as they arrive, so it holds neither
activations nor a (prompts x positions x nodes) array. The result is the same, bit for
bit, for every worker count, batch size and block order, and equals
:func:`nodewrite.topk.local_top_examples` (ties: value, then prompt, then position).

Importing ``nodewrite`` never imports Ray; this module does, when a function is called.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .errors import NodeWriteError, NodeWriteValueError
from .topk import PromptDeriver, TopExamples, as_token_array, check_request, layer_list, merge

__all__ = ["top_examples", "TopExamples"]


def _is_model(x: Any) -> bool:
    return hasattr(x, "cfg") and hasattr(x, "run_with_cache")


class _Worker:
    """The actor: one model, every batch it is given reduced to per-layer top-k partials."""

    def __init__(self, model: Any, dst: str, layers: List[int], k: int, direction: Any, largest: bool,
                 threads: Optional[int] = None):
        import os

        import torch

        import nodewrite as nw

        if threads is not None:
            torch.set_num_threads(threads)
            nw.set_num_threads(threads)
        nw_threads = nw.get_num_threads()
        tl_model = model if _is_model(model) else model()
        if not _is_model(tl_model):
            raise NodeWriteValueError(
                f"model: expected a TransformerLens HookedTransformer or a callable returning one, got {type(tl_model).__name__}")
        if threads is None and nw.get_num_threads() == nw_threads and not os.environ.get("NODEWRITE_NUM_THREADS"):
            # nodewrite's default is every CPU of the process; torch's, in a Ray actor, the CPUs
            # reserved for it (Ray sets OMP_NUM_THREADS). Unless the callable chose, nodewrite
            # follows torch, so that actors sharing a machine do not oversubscribe its cores.
            nw.set_num_threads(torch.get_num_threads())
        self.deriver = PromptDeriver(tl_model, dst, layers, k, direction, largest)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        parts = self.deriver.top_k(batch["tokens"], batch["prompt"])
        out: Dict[str, np.ndarray] = {}
        for l, p in parts.items():
            out[f"values_{l}"], out[f"prompt_{l}"], out[f"position_{l}"] = p.values[None], p.prompt[None], p.position[None]
        return out


def _merge_rows(blocks: list, layers: List[int], k: int, largest: bool) -> Dict[int, TopExamples]:
    """Every partial row of some blocks, merged per layer."""
    out: Dict[int, TopExamples] = {}
    for block in blocks:
        if isinstance(block, dict) and "layers" in block:  # an already merged result
            parts = [block["layers"]]
        else:
            parts = [{l: TopExamples(block[f"values_{l}"][i], block[f"prompt_{l}"][i], block[f"position_{l}"][i]) for l in layers}
                     for i in range(len(block[f"values_{layers[0]}"]))]
        for part in parts:
            for l in layers:
                out[l] = part[l] if l not in out else merge(out[l], part[l], k, largest)
    return out


def _fold(blocks: Any, layers: List[int], k: int, largest: bool) -> Dict[int, TopExamples]:
    """The per-batch partial results, merged as a binary tree as they arrive: ``levels[i]``
    holds the merge of 2**i blocks, and a new block carries up like a binary counter (merge is
    associative and commutative: any order and shape give the same bits). The driver holds the
    blocks Ray Data has in flight and one partial per level: O(layers x n_nodes x k x
    (blocks in flight + log2 blocks))."""
    levels: List[Optional[dict]] = []
    for block in blocks:
        carry = {"layers": _merge_rows([block], layers, k, largest)}
        i = 0
        while i < len(levels) and levels[i] is not None:
            carry = {"layers": _merge_rows([levels[i], carry], layers, k, largest)}
            levels[i] = None
            i += 1
        if i == len(levels):
            levels.append(None)
        levels[i] = carry
    left = [p for p in levels if p is not None]
    if not left:
        raise NodeWriteError("top_examples: the dataset produced no partial results")
    return _merge_rows(left, layers, k, largest)


def _worker_error(e: BaseException) -> BaseException:
    """The worker's own NodeWriteError inside Ray's wrappers (RayTaskError, UserCodeException,
    ...): found in the exception chain, or else rebuilt from the traceback text Ray carries
    ("nodewrite.errors.NodeWriteValueError: message"); e itself when there is none."""
    from . import errors

    seen = set()
    cur: Optional[BaseException] = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, NodeWriteError):
            return cur
        nxt = getattr(cur, "cause", None)
        for cand in (nxt, cur.__cause__, cur.__context__):
            if isinstance(cand, BaseException) and id(cand) not in seen:
                nxt = cand
                break
        cur = nxt if isinstance(nxt, BaseException) else None
    found = re.findall(r"nodewrite\.errors\.(NodeWrite\w*Error): (.*)", str(e))
    if found:
        name, message = found[-1]
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, NodeWriteError):
            return cls(message.strip())
    return e


def top_examples(model: Any, tokens: Any, dst: str, layers: Any, *, k: int = 20, direction: Any = None,
                 batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                 threads_per_worker: Optional[int] = None, largest: bool = True) -> Dict[int, TopExamples]:
    """Each node's k largest (or smallest) values of derived scalar ``dst`` over every prompt and
    position, for each layer in ``layers``.

    model: a TransformerLens ``HookedTransformer``, or a zero-argument callable returning one
    (each actor calls it once; use this for large models, so that only the callable travels).
    tokens: (N, T) integer ids, a sequence of equal-length token sequences, or a Ray Dataset with a
    ``tokens`` column (and optionally a ``prompt`` column of prompt indices; otherwise row order).
    dst: any derived scalar ``nodewrite.derive`` computes from a TransformerLens cache
    (``nodewrite.dst_info(dst)``). direction: passed to ``nodewrite.derive`` for projections.
    batch_size: prompts per actor call (default 32); num_workers: actors (default: the CPUs Ray
    has, at most the number of batches); threads_per_worker: CPUs each actor reserves from Ray
    and the torch and nodewrite threads it runs (default: 1 CPU; torch's threads as Ray sets
    them, nodewrite's the same as torch's unless ``model()`` set them); largest=False keeps the
    smallest values.

    Returns {layer: TopExamples(values (n_nodes, k), prompt (n_nodes, k), position (n_nodes, k, p))}:
    a node is a neuron or latent of a (T, n) output, a head of a (T, T, heads), (T(T+1)/2, heads)
    or (T, heads) output; p is 1 (token) or 2 (query, key). Raises NodeWriteError subclasses for
    bad arguments and re-raises a worker's NodeWriteError with its message; Ray stays usable.
    """
    import ray

    import nodewrite as nw

    info = nw.dst_info(dst)  # an unknown DST fails here, on the driver
    n_layers = model.cfg.n_layers if _is_model(model) else None
    layer_ids = layer_list(layers, n_layers)
    batch_size = 32 if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise NodeWriteValueError(f"batch_size = {batch_size!r}: expected a positive integer")
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer))
                                    or num_workers <= 0):
        raise NodeWriteValueError(f"num_workers = {num_workers!r}: expected a positive integer")
    if threads_per_worker is not None and (isinstance(threads_per_worker, bool) or not isinstance(
            threads_per_worker, (int, np.integer)) or threads_per_worker <= 0):
        raise NodeWriteValueError(f"threads_per_worker = {threads_per_worker!r}: expected a positive integer")
    causal = not (_is_model(model) and getattr(model.cfg, "attention_dir", "causal") == "bidirectional")

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    if isinstance(tokens, ray.data.Dataset):
        # Read (and number) the prompts before the actor pool starts: actors holding every CPU
        # would otherwise leave none for the read tasks upstream of them (a deadlock on a
        # cluster of num_workers CPUs). The object store holds the token ids (8 bytes each).
        # Rows are numbered in the dataset's order, which Ray Data keeps only with
        # preserve_order: without it a prompt index could name another prompt.
        # A Dataset runs under the context it was made in: set the option there and in the
        # current one (for the datasets made below), then put both back.
        contexts = [tokens.context.execution_options, ray.data.DataContext.get_current().execution_options]
        kept = [o.preserve_order for o in contexts]
        for o in contexts:
            o.preserve_order = True
        try:
            ds = tokens.materialize()
            n_prompts = ds.count()
            first = ds.take(1)[0]["tokens"]
            n_tokens = len(first)
            if "prompt" not in ds.columns():
                ds = ds.zip(ray.data.range(n_prompts).rename_columns({"id": "prompt"})).materialize()
        finally:
            for o, was in zip(contexts, kept):
                o.preserve_order = was
        map_batch_size: Optional[int] = batch_size
    else:
        arr = as_token_array(tokens)
        n_prompts, n_tokens = arr.shape
        # One block per batch (sizes differ by at most one, none above batch_size), each given to
        # an actor whole: equal batches, none split across blocks into small ones.
        ds = ray.data.from_items([{"tokens": arr[i], "prompt": i} for i in range(n_prompts)],
                                 override_num_blocks=-(-n_prompts // batch_size))
        map_batch_size = None
    check_request(n_prompts, n_tokens, info.layout, k, causal)
    n_batches = -(-n_prompts // batch_size)
    cpus = 1 if threads_per_worker is None else int(threads_per_worker)
    workers = num_workers or max(1, min(int(ray.available_resources().get("CPU", 1)) // cpus, n_batches))
    try:
        partials = ds.map_batches(
            _Worker, fn_constructor_args=(model, dst, layer_ids, k, direction, largest, threads_per_worker),
            batch_size=map_batch_size, batch_format="numpy", num_cpus=cpus,
            compute=ray.data.ActorPoolStrategy(size=workers))
        # Streamed to the driver as the actors finish batches and merged there as a tree,
        # overlapping the merge with the batches still running (a tree of Ray merge tasks cost
        # each level a task start: 8 s of a 103 s run on a loaded 2-core machine).
        return _fold(partials.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1),
                     layer_ids, k, largest)
    except NodeWriteError:
        raise
    except Exception as e:  # Ray's wrapper of a worker's exception
        inner = _worker_error(e)
        if inner is not e:
            raise type(inner)(str(inner)) from e
        raise

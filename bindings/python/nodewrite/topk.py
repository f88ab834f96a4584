"""Top dataset examples per node: the reduction behind :mod:`nodewrite.ray`, without Ray.

A derived scalar's output for one prompt is viewed per node (a neuron or latent of a (T, n)
output; a head of a (T, T, heads), (T(T+1)/2, heads) or (T, heads) output; the layer of a
(T, 1) output) as values at positions (a token; or a (query, key) pair). Across prompts, each
node keeps its k largest (or smallest) values under one total order, so that any grouping of
the prompts gives the same bits:

    value (largest or smallest first; NaN after every number), then prompt, then position.

``local_top_examples`` is the single-process loop (``run_with_cache`` + ``nodewrite.derive``
+ this reduction): the reference the Ray version equals.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, NamedTuple, Optional, Sequence

import numpy as np

from .errors import NodeWriteValueError

__all__ = ["TopExamples", "node_view", "select", "merge", "positions_per_prompt", "local_top_examples"]


class TopExamples(NamedTuple):
    """Each node's top examples: row i is node i (a neuron, head, latent or the layer)."""

    values: np.ndarray  # (n_nodes, k) float32
    prompt: np.ndarray  # (n_nodes, k) int64: index of the prompt in the input order
    position: np.ndarray  # (n_nodes, k, p) int64: (token,) or (query, key)


def _pairs(n_tokens: int, causal: bool) -> np.ndarray:
    """(query, key) positions of the pairs a (T, T, heads) output holds, row-major."""
    if causal:
        q, k = np.tril_indices(n_tokens)
    else:
        q, k = np.divmod(np.arange(n_tokens * n_tokens), n_tokens)
    return np.stack([q, k], axis=1).astype(np.int64)


def positions_per_prompt(layout: str, n_tokens: int, causal: bool = True) -> int:
    """How many positions one prompt gives each node for a derived scalar of this layout."""
    if layout in ("unflattened", "flattened"):
        return n_tokens * (n_tokens + 1) // 2 if causal or layout == "flattened" else n_tokens * n_tokens
    return n_tokens


def node_view(layout: str, out: np.ndarray, causal: bool = True) -> tuple:
    """(values (n_nodes, n_positions), positions (n_positions, p)) of one prompt's output.

    layout: the derived scalar's ``nodewrite.dst_info(dst).layout``. Pairs above the diagonal
    of a causal model are not positions (they are not nodes of the prompt)."""
    out = np.asarray(out)
    if layout == "unflattened":
        T = out.shape[0]
        pos = _pairs(T, causal)
        return np.ascontiguousarray(out[pos[:, 0], pos[:, 1], :].T), pos
    if layout == "flattened":
        n_pairs = out.shape[0]
        T = int((np.sqrt(8 * n_pairs + 1) - 1) // 2)
        return np.ascontiguousarray(out.T), _pairs(T, True)
    if layout in ("nodes", "per_sequence_token", "layer"):
        if out.ndim != 2:
            raise NodeWriteValueError(f"a {layout!r} output is (T, n); got shape {out.shape}")
        return np.ascontiguousarray(out.T), np.arange(out.shape[0], dtype=np.int64)[:, None]
    raise NodeWriteValueError(f"top examples of a derived scalar with layout {layout!r} are not defined")


def _order(values: np.ndarray, prompt: np.ndarray, position: np.ndarray, largest: bool) -> np.ndarray:
    """Indices sorting each row by the total order (lexsort: the last key is the primary)."""
    nan = np.isnan(values)
    key = np.where(nan, 0.0, -values if largest else values)
    keys = [position[..., j] for j in range(position.shape[-1] - 1, -1, -1)] + [prompt, key, nan]
    return np.lexsort(keys, axis=-1)


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    if a.ndim == idx.ndim:
        return np.take_along_axis(a, idx, axis=1)
    return np.take_along_axis(a, idx[..., None], axis=1)


def select(values: np.ndarray, prompt: np.ndarray, position: np.ndarray, k: int, largest: bool) -> TopExamples:
    """The first k of each row under the total order. values (n, m); prompt (n, m) or (m,);
    position (n, m, p) or (m, p). Candidates are narrowed by value first (all ties at the k-th
    value kept), so only a few per row are sorted."""
    values = np.asarray(values, dtype=np.float32)
    n, m = values.shape
    prompt = np.broadcast_to(np.asarray(prompt, dtype=np.int64), (n, m))
    position = np.asarray(position, dtype=np.int64)
    position = np.broadcast_to(position, (n, m, position.shape[-1]))
    k = min(k, m)
    if m > 4 * k + 16:
        key = np.where(np.isnan(values), np.inf, -values if largest else values)
        kth = np.partition(key, k - 1, axis=1)[:, k - 1 : k]
        keep = key <= kth  # every value at least as good as the k-th, ties included (NaN: +inf)
        width = int(keep.sum(axis=1).max())
        cand = np.argsort(~keep, axis=1, kind="stable")[:, :width]
        valid = np.take_along_axis(keep, cand, axis=1)
        v = np.where(valid, np.take_along_axis(values, cand, axis=1), np.nan)
        pr = np.where(valid, np.take_along_axis(prompt, cand, axis=1), np.iinfo(np.int64).max)
        po = np.where(valid[..., None], _take(position, cand), np.iinfo(np.int64).max)
        values, prompt, position = v, pr, po
    order = _order(values, prompt, position, largest)[:, :k]
    return TopExamples(_take(values, order), _take(prompt, order), _take(position, order))


def merge(a: TopExamples, b: TopExamples, k: int, largest: bool) -> TopExamples:
    """The top k of two partial results (associative and commutative: any tree gives the same)."""
    return select(np.concatenate([a.values, b.values], axis=1), np.concatenate([a.prompt, b.prompt], axis=1),
                  np.concatenate([a.position, b.position], axis=1), k, largest)


def batch_top_examples(outputs: Iterable[tuple], layout: str, k: int, largest: bool, causal: bool = True) -> TopExamples:
    """Reduces (prompt index, output) pairs of one layer to each node's top k."""
    vals, prompts, poss = [], [], []
    for p, out in outputs:
        v, pos = node_view(layout, out, causal)
        vals.append(v)
        prompts.append(np.full(v.shape[1], p, dtype=np.int64))
        poss.append(pos)
    return select(np.concatenate(vals, axis=1), np.concatenate(prompts), np.concatenate(poss), k, largest)


def check_request(n_prompts: int, n_tokens: int, layout: str, k: int, causal: bool = True) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise NodeWriteValueError(f"k = {k!r}: expected a positive integer")
    total = n_prompts * positions_per_prompt(layout, n_tokens, causal)
    if k > total:
        raise NodeWriteValueError(
            f"k = {k} is larger than the number of examples each node has ({n_prompts} prompts x "
            f"{positions_per_prompt(layout, n_tokens, causal)} positions = {total}); ask for k <= {total}")


def as_token_array(tokens: Any) -> np.ndarray:
    """(N, T) int64 from an int array or a sequence of equal-length token sequences."""
    if hasattr(tokens, "detach"):
        tokens = tokens.detach().cpu().numpy()
    if isinstance(tokens, np.ndarray):
        arr = tokens
    else:
        rows = [np.asarray(r.detach().cpu().numpy() if hasattr(r, "detach") else r) for r in tokens]
        lengths = sorted({r.shape for r in rows})
        if len(lengths) > 1:
            raise NodeWriteValueError(
                f"tokens: prompts of unequal lengths {[l[0] if l else 0 for l in lengths][:6]}: every prompt must have "
                "the same number of tokens (pad or truncate them first)")
        arr = np.stack(rows) if rows else np.zeros((0, 0), np.int64)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise NodeWriteValueError(f"tokens: expected (prompts, tokens) integer ids, got {arr.dtype} of shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise NodeWriteValueError(f"tokens: no prompts or no tokens (shape {arr.shape})")
    return arr.astype(np.int64, copy=False)


def layer_list(layers: Any, n_layers: Optional[int]) -> list:
    ls = [layers] if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool) else list(layers)
    if not ls:
        raise NodeWriteValueError("layers: no layer given")
    for l in ls:
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
            raise NodeWriteValueError(f"layers: {l!r} is not a layer index")
        if n_layers is not None and not 0 <= l < n_layers:
            raise NodeWriteValueError(f"layers: layer {l} is out of range for a model of {n_layers} layers (0 ... {n_layers - 1})")
    return [int(l) for l in ls]


class PromptDeriver:
    """What one worker holds: a TransformerLens model, the nodewrite model made from it, and the
    request; ``top_k(tokens, prompt_ids)`` reduces a batch of prompts to per-layer partials."""

    def __init__(self, model: Any, dst: str, layers: Sequence[int], k: int, direction: Any, largest: bool):
        import nodewrite as nw
        import nodewrite.tl  # noqa: F401

        self.tl_model = model
        self.model = nw.tl.model_from(model)
        self.info = nw.dst_info(dst)
        self.dst, self.k, self.largest = dst, k, largest
        self.layers = layer_list(layers, model.cfg.n_layers)
        self.direction = direction
        self.causal = getattr(model.cfg, "attention_dir", "causal") != "bidirectional"
        hooks = {f"blocks.{l}.{h}" for l in self.layers for h in ("attn.hook_pattern", "attn.hook_v", "mlp.hook_post")}
        self._hooks = lambda name: name in hooks or name.endswith(".hook_sae_acts_post")

    def top_k(self, tokens: np.ndarray, prompt_ids: np.ndarray) -> Dict[int, TopExamples]:
        import torch

        import nodewrite as nw
        import nodewrite.tl  # noqa: F401

        with torch.no_grad():  # blocks after the last asked layer, ln_final and the unembedding are not run
            _, cache = self.tl_model.run_with_cache(torch.as_tensor(tokens), names_filter=self._hooks,
                                                    stop_at_layer=max(self.layers) + 1)
        result = {}
        for l in self.layers:
            outs = []
            for b, p in enumerate(prompt_ids):
                store = nw.tl.store_from(cache, batch=b, layers=[l])
                kw = {} if self.direction is None else {"direction": self.direction}
                outs.append((int(p), nw.derive(self.model, store, self.dst, l, **kw)))
            result[l] = batch_top_examples(outs, self.info.layout, self.k, self.largest, self.causal)
        return result


def local_top_examples(model: Any, tokens: Any, dst: str, layers: Any, *, k: int = 20, direction: Any = None,
                       batch_size: Optional[int] = None, largest: bool = True) -> Dict[int, TopExamples]:
    """The single-process loop: every prompt through ``run_with_cache`` and ``nodewrite.derive``,
    then one top-k per node over all prompts and positions. Same arguments and result as
    :func:`nodewrite.ray.top_examples` (``model`` a HookedTransformer)."""
    import nodewrite as nw

    arr = as_token_array(tokens)
    info = nw.dst_info(dst)
    causal = getattr(model.cfg, "attention_dir", "causal") != "bidirectional"
    check_request(arr.shape[0], arr.shape[1], info.layout, k, causal)
    worker = PromptDeriver(model, dst, layers, k, direction, largest)
    step = batch_size or arr.shape[0]
    parts = [worker.top_k(arr[i : i + step], np.arange(i, min(i + step, arr.shape[0]))) for i in range(0, arr.shape[0], step)]
    out = parts[0]
    for part in parts[1:]:
        out = {l: merge(out[l], part[l], k, largest) for l in out}
    return out

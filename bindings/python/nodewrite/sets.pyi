"""Stubs of nodewrite.sets: node sets and TDB's write family."""

from typing import Any, Optional, Sequence, Tuple, Union, overload

import numpy as np
import numpy.typing as npt

from ._core import ActivationStore, Model

# numpy integer array, CPU torch integer tensor, or nested list of int, shape (n, k)
_Indices = Union[npt.NDArray[np.integer], Sequence[Sequence[int]], Any]
# numpy float array or CPU torch float tensor (buffer protocol or DLPack), any strides
_Tensor = Any

__all__: list

DSTS: Tuple[str, ...]

def node_writes(
    model: Model,
    store: ActivationStore,
    node_type: str,
    layer: int,
    indices: _Indices,
    *,
    out: Optional[_Tensor] = None,
) -> Any:
    """(n, d_model) float32 write vectors: a new numpy array, or `out` written in place."""

@overload
def token_writes(
    model: Model, store: ActivationStore, node_type: str, layer: int, indices: _Indices, *, top_k: None = None, largest: bool = True
) -> npt.NDArray[np.float32]: ...
@overload
def token_writes(
    model: Model, store: ActivationStore, node_type: str, layer: int, indices: _Indices, *, top_k: int, largest: bool = True
) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def derive(
    model: Model,
    store: ActivationStore,
    dst: str,
    layer: int,
    *,
    direction: Optional[_Tensor] = None,
    out: Optional[_Tensor] = None,
) -> Any:
    """float32 array of TDB's shape for dst (a new numpy array, or `out` written in place)."""

def node_write_to_direction(model: Model, store: ActivationStore, node: Any, direction: _Tensor) -> npt.NDArray[np.float32]:
    """(T, 1) float32."""

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def set_output_cache_bytes(n: int) -> None: ...
def get_output_cache_bytes() -> int: ...
def keys_and_heads_at_query(q: int, n_heads: Union[int, Model]) -> npt.NDArray[np.int64]:
    """int64 (n_heads * (q + 1), 3): rows (q, k, h), for h, for k <= q."""
def heads_at(q: int, k: int, n_heads: Union[int, Model]) -> npt.NDArray[np.int64]:
    """int64 (n_heads, 3): rows (q, k, h)."""
def neurons_at_token(t: int, d_ff: Union[int, Model]) -> npt.NDArray[np.int64]:
    """int64 (d_ff, 2): rows (t, n)."""
def latents_at_token(
    t: int, n_latents: Union[int, Model], node_type: Optional[str] = None, layer: Optional[int] = None
) -> npt.NDArray[np.int64]:
    """int64 (n_latents, 2): rows (t, l)."""

"""Stub of nodewrite.sets: the node-set helpers written in Python, and the extension's node
sets, write family and token writes it re-exports (typed in _core.pyi)."""

from typing import List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from ._core import (
    Model,
    TopTokenWrites as TopTokenWrites,
    derive as derive,
    get_num_threads as get_num_threads,
    get_output_cache_bytes as get_output_cache_bytes,
    node_write_to_direction as node_write_to_direction,
    node_writes as node_writes,
    set_num_threads as set_num_threads,
    set_output_cache_bytes as set_output_cache_bytes,
    token_writes as token_writes,
    top_token_writes as top_token_writes,
)
from .info import DSTS as DSTS

__all__: List[str]

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

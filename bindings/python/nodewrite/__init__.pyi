"""Type stubs of nodewrite (the classes and functions come from the extension nodewrite._core)."""

from typing import Any, Dict, Iterable, Optional, Tuple

from ._core import (
    ActivationStore as ActivationStore,
    Model as Model,
    NodeWriteDeriver as NodeWriteDeriver,
    node_write as node_write,
    node_write_vectors as node_write_vectors,
    autoencoder_input_kind as autoencoder_input_kind,
)
from .errors import (
    NodeWriteError as NodeWriteError,
    NodeWriteIndexError as NodeWriteIndexError,
    NodeWriteKeyError as NodeWriteKeyError,
    NodeWriteMemoryError as NodeWriteMemoryError,
    NodeWriteValueError as NodeWriteValueError,
    check as check,
)
from .sets import (
    DSTS as DSTS,
    derive as derive,
    get_num_threads as get_num_threads,
    get_output_cache_bytes as get_output_cache_bytes,
    heads_at as heads_at,
    keys_and_heads_at_query as keys_and_heads_at_query,
    latents_at_token as latents_at_token,
    neurons_at_token as neurons_at_token,
    node_write_to_direction as node_write_to_direction,
    node_writes as node_writes,
    set_num_threads as set_num_threads,
    set_output_cache_bytes as set_output_cache_bytes,
    token_writes as token_writes,
)

__version__: str
__all__ = [
    "__version__",
    "abi_version",
    "library_version",
    "autoencoder_input_kind",
    "Model",
    "ActivationStore",
    "NodeIndex",
    "NodeWriteDeriver",
    "node_write",
    "node_write_vectors",
    "NodeWriteError",
    "NodeWriteIndexError",
    "NodeWriteValueError",
    "NodeWriteKeyError",
    "NodeWriteMemoryError",
    "check",
    "NODE_TYPES",
    "ACTIVATIONS",
    "WEIGHTS",
    "DTYPES",
    "STATUSES",
    # nodewrite.sets
    "node_writes",
    "token_writes",
    "derive",
    "node_write_to_direction",
    "set_num_threads",
    "get_num_threads",
    "set_output_cache_bytes",
    "get_output_cache_bytes",
    "keys_and_heads_at_query",
    "heads_at",
    "neurons_at_token",
    "latents_at_token",
    "DSTS",
]

NODE_TYPES: Tuple[str, ...]
ACTIVATIONS: Tuple[str, ...]
WEIGHTS: Tuple[str, ...]
DTYPES: Tuple[str, ...]
STATUSES: Dict[str, int]

def abi_version() -> int:
    """NW_ABI_VERSION of the loaded libnodewrite."""

def library_version() -> str:
    """Version string of the loaded libnodewrite."""

class NodeIndex:
    """A node, as TDB's NodeIndex for the forward pass."""

    node_type: str
    layer_index: int
    tensor_indices: Tuple[int, ...]
    def __init__(
        self,
        node_type: Any,
        layer: int = ...,
        tensor_indices: Iterable[int] = ...,
        *,
        layer_index: int = ...,
        pass_type: Optional[Any] = None,
    ) -> None: ...
    @property
    def layer(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...


"""Stub of nodewrite: it re-exports the extension's names (typed exactly in _core.pyi), the
errors, the library's facts (info.py) and the node-set helpers (sets.pyi)."""

from typing import Dict, Iterable, List, Optional, Tuple

from . import errors as errors, info as info
from ._core import (
    ActivationStore as ActivationStore,
    Model as Model,
    NodeWriteDeriver as NodeWriteDeriver,
    autoencoder_input_kind as autoencoder_input_kind,
    node_write as node_write,
    node_write_vectors as node_write_vectors,
)
from .errors import (
    NodeWriteError as NodeWriteError,
    NodeWriteIndexError as NodeWriteIndexError,
    NodeWriteKeyError as NodeWriteKeyError,
    NodeWriteMemoryError as NodeWriteMemoryError,
    NodeWriteStaleInputError as NodeWriteStaleInputError,
    NodeWriteValueError as NodeWriteValueError,
    check as check,
)
from .info import (
    ACTIVATIONS as ACTIVATIONS,
    AUTOENCODER_INPUTS as AUTOENCODER_INPUTS,
    DSTS as DSTS,
    DTYPES as DTYPES,
    NODE_TYPES as NODE_TYPES,
    SAELENS_HOOKS as SAELENS_HOOKS,
    WEIGHTS as WEIGHTS,
    ActivationInfo as ActivationInfo,
    AutoencoderInputInfo as AutoencoderInputInfo,
    DstInfo as DstInfo,
    DTypeInfo as DTypeInfo,
    NodeTypeInfo as NodeTypeInfo,
    SAELensHook as SAELensHook,
    WeightInfo as WeightInfo,
    activation_info as activation_info,
    autoencoder_input_info as autoencoder_input_info,
    dst_info as dst_info,
    dtype_info as dtype_info,
    node_type_info as node_type_info,
    saelens_hook as saelens_hook,
    weight_info as weight_info,
)
from .sets import (
    TopTokenWrites as TopTokenWrites,
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
    top_token_writes as top_token_writes,
)

__version__: str
__all__: List[str]

STATUSES: Dict[str, int]

def abi_version() -> int: ...
def library_version() -> str: ...

class NodeIndex:
    """A node, as TDB's NodeIndex (and, with q_k_or_v, TDB's AttnSubNodeIndex)."""

    node_type: str
    layer_index: int
    tensor_indices: Tuple[Optional[int], ...]
    q_k_or_v: Optional[str]
    def __init__(
        self,
        node_type: str,
        layer: int = ...,
        tensor_indices: Iterable[Optional[int]] = ...,
        *,
        layer_index: int = ...,
        pass_type: Optional[object] = None,
        q_k_or_v: Optional[str] = None,
    ) -> None: ...
    @property
    def layer(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

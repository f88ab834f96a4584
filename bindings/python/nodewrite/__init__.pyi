"""Type stubs of nodewrite (the classes and functions come from the extension nodewrite._core)."""

from typing import Any, Iterable, List, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from .errors import (
    NodeWriteError as NodeWriteError,
    NodeWriteIndexError as NodeWriteIndexError,
    NodeWriteKeyError as NodeWriteKeyError,
    NodeWriteMemoryError as NodeWriteMemoryError,
    NodeWriteValueError as NodeWriteValueError,
    check as check,
)

__version__: str
__all__ = [
    "__version__",
    "abi_version",
    "library_version",
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
]

NODE_TYPES: Tuple[str, ...]
ACTIVATIONS: Tuple[str, ...]
WEIGHTS: Tuple[str, ...]
DTYPES: Tuple[str, ...]

# A numpy array (float32, float16, float64) or a CPU torch tensor (float32, float16,
# bfloat16) with any strides; anything with the buffer protocol or __dlpack__.
_TensorLike = Any

def abi_version() -> int:
    """NW_ABI_VERSION of the loaded libnodewrite."""

def library_version() -> str:
    """Version string of the loaded libnodewrite."""

class NodeIndex:
    """A node, as TDB's NodeIndex for the forward pass."""

    node_type: str
    layer_index: int
    tensor_indices: Tuple[int, ...]
    def __init__(self, node_type: Any, layer: int, tensor_indices: Iterable[int]) -> None: ...
    @property
    def layer(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class Model:
    """A transformer's dimensions and output weights (and autoencoder decoders)."""

    def __init__(self, n_layers: int, d_model: int, n_heads: int, d_head: int, d_ff: int) -> None: ...
    def set_weight(self, name: str, layer: int, weight: _TensorLike, copy: bool = True) -> None:
        """name: "mlp.to_residual" (d_ff, d_model) or "attn.to_residual" (n_heads, d_head, d_model)."""
    def set_autoencoder(
        self, node_type: str, layer: int, decoder: _TensorLike, input: str, copy: bool = True
    ) -> None:
        """decoder (n_latents, n_inputs); input: "mlp_post_act" or a residual-stream type."""
    @property
    def n_layers(self) -> int: ...
    @property
    def d_model(self) -> int: ...
    @property
    def n_heads(self) -> int: ...
    @property
    def d_head(self) -> int: ...
    @property
    def d_ff(self) -> int: ...

class ActivationStore:
    """Raw activations keyed by (ActivationLocationType value, layer); borrowed, never copied."""

    def __init__(self) -> None: ...
    def put(self, name: str, layer: int, tensor: _TensorLike) -> None: ...
    def remove(self, name: str, layer: int) -> None: ...
    def clear(self) -> None: ...
    def get(self, name: str, layer: int) -> Any: ...
    def keys(self) -> List[Tuple[str, int]]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...

class NodeWriteDeriver:
    """The node-write deriver of one node (TDB's ScalarDeriver for SINGLE_NODE_WRITE)."""

    def __init__(self, model: Model, node: NodeIndex) -> None: ...
    @property
    def requirements(self) -> List[Tuple[str, int]]: ...
    @property
    def model(self) -> Model: ...
    @property
    def node(self) -> NodeIndex: ...
    def derive(self, store: ActivationStore) -> npt.NDArray[np.float32]:
        """(T, d_model) float32, zero except the node's token row."""
    def derive_vector(self, store: ActivationStore) -> Tuple[npt.NDArray[np.float32], int]:
        """(write vector (d_model,) float32, token row)."""

def node_write(model: Model, store: ActivationStore, node: NodeIndex) -> npt.NDArray[np.float32]:
    """One-shot (T, d_model) float32 output of the node-write deriver of node."""

def node_write_vectors(
    model: Model, store: ActivationStore, nodes: Sequence[NodeIndex]
) -> Tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """(vectors (n, d_model) float32, token_rows (n,) int64) for many nodes in one call."""

"""Exceptions of nodewrite, and the one mapping from a C status to an exception.

Every failure of the library, and every bad argument the binding itself rejects, goes
through :func:`check` (as pygit2's ``errors.py`` does), so the mapping lives in one place:

==============================  ============================  ======================
C status                        exception                     also an instance of
==============================  ============================  ======================
NW_ERR_INDEX_OUT_OF_RANGE       :class:`NodeWriteIndexError`  ``IndexError``
NW_ERR_INVALID_ARGUMENT         :class:`NodeWriteValueError`  ``ValueError``
NW_ERR_SHAPE_MISMATCH           :class:`NodeWriteValueError`  ``ValueError``
NW_ERR_UNSUPPORTED_DTYPE        :class:`NodeWriteValueError`  ``ValueError``
NW_ERR_UNSUPPORTED              :class:`NodeWriteValueError`  ``ValueError``
NW_ERR_BUFFER_TOO_SMALL         :class:`NodeWriteValueError`  ``ValueError``
NW_ERR_MISSING_INPUT            :class:`NodeWriteKeyError`    ``KeyError``
NW_ERR_OUT_OF_MEMORY            :class:`NodeWriteMemoryError` ``MemoryError``
NW_ERR_STALE_INPUT              :class:`NodeWriteStaleInputError`  (borrowed memory or a
                                                              mapped file changed)
==============================  ============================  ======================

All of them derive from :class:`NodeWriteError`. Each carries ``status`` (the C status
code) and ``status_name`` ("NW_ERR_...").
"""

from __future__ import annotations

from typing import NoReturn, Optional


__all__ = [
    "NodeWriteError",
    "NodeWriteIndexError",
    "NodeWriteValueError",
    "NodeWriteKeyError",
    "NodeWriteMemoryError",
    "NodeWriteStaleInputError",
    "check",
    "OK",
    "INVALID_ARGUMENT",
    "INDEX_OUT_OF_RANGE",
    "SHAPE_MISMATCH",
    "UNSUPPORTED_DTYPE",
    "MISSING_INPUT",
    "UNSUPPORTED",
    "OUT_OF_MEMORY",
    "BUFFER_TOO_SMALL",
    "STALE_INPUT",
]

from . import _core

# Status codes and names, read from the library (nw_status_string): the one source.
_STATUS_CODES: dict = _core.statuses()  # {"NW_OK": 0, "NW_ERR_INVALID_ARGUMENT": -1, ...}
_STATUS_NAMES: dict = {code: name for name, code in _STATUS_CODES.items()}

OK: int = _STATUS_CODES["NW_OK"]
INVALID_ARGUMENT: int = _STATUS_CODES["NW_ERR_INVALID_ARGUMENT"]
INDEX_OUT_OF_RANGE: int = _STATUS_CODES["NW_ERR_INDEX_OUT_OF_RANGE"]
SHAPE_MISMATCH: int = _STATUS_CODES["NW_ERR_SHAPE_MISMATCH"]
UNSUPPORTED_DTYPE: int = _STATUS_CODES["NW_ERR_UNSUPPORTED_DTYPE"]
MISSING_INPUT: int = _STATUS_CODES["NW_ERR_MISSING_INPUT"]
UNSUPPORTED: int = _STATUS_CODES["NW_ERR_UNSUPPORTED"]
OUT_OF_MEMORY: int = _STATUS_CODES["NW_ERR_OUT_OF_MEMORY"]
BUFFER_TOO_SMALL: int = _STATUS_CODES["NW_ERR_BUFFER_TOO_SMALL"]
STALE_INPUT: int = _STATUS_CODES["NW_ERR_STALE_INPUT"]


class NodeWriteError(Exception):
    """Base class of every exception nodewrite raises.

    ``status`` is the C status code (``nw_status``), ``status_name`` its name.
    """

    status: int
    status_name: str

    def __init__(self, message: str = "", status: int = INVALID_ARGUMENT) -> None:
        super().__init__(message)
        self.status = status
        self.status_name = _STATUS_NAMES.get(status, "NW_ERR_UNKNOWN")

    def __str__(self) -> str:  # KeyError would otherwise print repr(message)
        return str(self.args[0]) if self.args else ""


class NodeWriteIndexError(NodeWriteError, IndexError):
    """An index or layer outside its dimension (the original raises IndexError too)."""


class NodeWriteValueError(NodeWriteError, ValueError):
    """A bad argument: shape, dtype, name, type of object, or an unsupported request."""


class NodeWriteKeyError(NodeWriteError, KeyError):
    """A weight, autoencoder or activation that is needed has not been set or put."""


class NodeWriteMemoryError(NodeWriteError, MemoryError):
    """An allocation would be too large, or failed."""


class NodeWriteStaleInputError(NodeWriteError):
    """Borrowed memory or a mapped file changed since it was handed over (a tensor put into a
    store, or a borrowed weight, whose producer moved or freed its storage; a checkpoint file
    truncated or rewritten): nothing was read. Put the tensor again (or reload the file)."""


_EXCEPTIONS = {
    INDEX_OUT_OF_RANGE: NodeWriteIndexError,
    INVALID_ARGUMENT: NodeWriteValueError,
    SHAPE_MISMATCH: NodeWriteValueError,
    UNSUPPORTED_DTYPE: NodeWriteValueError,
    UNSUPPORTED: NodeWriteValueError,
    BUFFER_TOO_SMALL: NodeWriteValueError,
    MISSING_INPUT: NodeWriteKeyError,
    OUT_OF_MEMORY: NodeWriteMemoryError,
    STALE_INPUT: NodeWriteStaleInputError,
}


def exception_for(status: int, message: str = "") -> Optional[NodeWriteError]:
    """The exception for a status (None for NW_OK), without raising it."""
    if status == OK:
        return None
    cls = _EXCEPTIONS.get(status, NodeWriteError)
    name = _STATUS_NAMES.get(status, "NW_ERR_UNKNOWN")
    text = message or name
    if message and cls is NodeWriteError:
        text = f"{name} ({status}): {message}"
    return cls(text, status)


def check(status: int, message: Optional[str] = None) -> None:
    """Raise the exception for a C status, or return if it is NW_OK (0).

    message defaults to the library's ``nw_last_error_message()`` on this thread.
    """
    if status == OK:
        return
    if message is None:
        message = _core.last_error_message()
    exc = exception_for(status, message)
    assert exc is not None
    raise exc


def _raise_for(status: int, message: str) -> NoReturn:
    """Used by the extension module: every failure it reports goes through check()."""
    check(status, message)
    raise NodeWriteError(message, status)  # unreachable: status is never OK here


_core._set_error_handler(_raise_for)

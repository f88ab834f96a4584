"""TDB's activation server with the drop-in, offline, on a local model.

TDB's own entry point (``python -m nodewrite.tdb``, i.e. TDB's ``activation_server/main.py``)
downloads the model (and GPT-2's tokenizer files) from OpenAI's public storage, and imports the
explanation routes, which need ``OPENAI_API_KEY`` at import and scikit-learn. This launcher
needs none of that::

    python -m nodewrite.tdb.local make-model DIR      # a random-weight TDB Transformer, saved by TDB
    python -m nodewrite.tdb.local serve DIR --port 8000

``make-model`` builds TDB's ``Transformer`` from a ``TransformerConfig`` with random weights and
writes it with TDB's ``save_checkpoint`` (``DIR/config.json``, ``DIR/model_pieces/*.pt``): the
same layout as TDB's published checkpoints, so a local copy of one of those works too, if its
tokenizer is available offline. Its tokenizer is :data:`BYTE_ENCODING`, one token per byte
(256) plus ``<|endoftext|>``, registered with tiktoken by this module (no download).

``serve`` installs the drop-in, builds a :class:`LocalModelContext` (TDB's
``StandardModelContext`` reading ``DIR`` instead of a model name) and TDB's ``InteractiveModel``
on it, and serves TDB's inference routes (``/derived_scalars``, ``/derived_attention_scalars``,
``/multiple_top_k_derived_scalars``, ``/batched``, ``/batched_tdb``, ``/model_info``: what TDB's
UI asks for a prompt) with uvicorn, plus ``GET /nodewrite/stats`` (``nodewrite.tdb.stats``:
which calls the library served). The explanation and dataset routes are not served (they need
OpenAI's API and the public datasets), so TDB's API-key check is never imported; nothing of it
is bypassed. CORS admits pages served from localhost, as TDB's server does, for TDB's UI.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["BYTE_ENCODING", "register_byte_encoding", "make_model", "LocalModelContext", "make_app", "main"]

#: The tiktoken encoding name of a local model's tokenizer: bytes 0..255 are tokens 0..255,
#: ``<|endoftext|>`` is 256.
BYTE_ENCODING = "nodewrite-bytes"
_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def register_byte_encoding() -> Any:
    """Makes ``tiktoken.get_encoding(BYTE_ENCODING)`` return the byte-level encoding (put into
    tiktoken's table of constructed encodings, which get_encoding consults first)."""
    import tiktoken
    import tiktoken.registry

    existing = tiktoken.registry.ENCODINGS.get(BYTE_ENCODING)
    if existing is not None:
        return existing
    encoding = tiktoken.Encoding(
        name=BYTE_ENCODING,
        pat_str=_SPLIT_PATTERN,
        mergeable_ranks={bytes([i]): i for i in range(256)},
        special_tokens={"<|endoftext|>": 256},
    )
    with tiktoken.registry._lock:
        tiktoken.registry.ENCODINGS.setdefault(BYTE_ENCODING, encoding)
    return tiktoken.registry.ENCODINGS[BYTE_ENCODING]


def make_model(path: "str | os.PathLike[str]", *, n_layers: int = 2, d_model: int = 64, n_heads: int = 4,
               ctx_window: int = 64, seed: int = 0) -> Path:
    """Writes a random-weight TDB Transformer (byte tokenizer) to ``path`` with TDB's
    ``save_checkpoint``; returns the path."""
    import torch
    from neuron_explainer.models.transformer import Norm, Transformer, TransformerConfig

    register_byte_encoding()
    config = TransformerConfig(enc=BYTE_ENCODING, ctx_window=ctx_window, d_model=d_model,
                               n_layers=n_layers, n_heads=n_heads)
    torch.manual_seed(seed)
    transformer = Transformer(config, device=torch.device("cpu"))
    with torch.no_grad():
        # embeddings at GPT-2's scale, so activations stay moderate; TDB's Norm leaves its
        # gain and bias uninitialised (torch.empty): gains near 1, small biases
        transformer.tok_embed.weight.normal_(0.0, 0.02)
        transformer.pos_embed.weight.normal_(0.0, 0.01)
        for module in transformer.modules():
            if isinstance(module, Norm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.02)
    path = Path(path)
    transformer.save_checkpoint(str(path))
    return path


def _model_context_class() -> type:
    import torch
    from neuron_explainer.models.model_context import ModelContext, StandardModelContext
    from neuron_explainer.models.transformer import Transformer, TransformerConfig

    class LocalModelContext(StandardModelContext):
        """TDB's StandardModelContext on a checkpoint directory (``config.json``,
        ``model_pieces/<name>.pt``) instead of a registered model name: weights are read from
        that directory, nothing from the network."""

        def __init__(self, path: "str | os.PathLike[str]", device: Optional[torch.device] = None) -> None:
            path = os.path.abspath(path)
            ModelContext.__init__(self, model_name=f"local:{path}", device=device or torch.device("cpu"))
            self.load_path = path
            self._config = TransformerConfig.load(os.path.join(path, "config.json"))
            self._cached_transformer = None
            if self._config.enc == BYTE_ENCODING:
                register_byte_encoding()

        def get_or_create_model(self, device: Optional[torch.device] = None, simplify: bool = False) -> Transformer:
            if self._cached_transformer is None:
                device = device or self.device
                transformer = Transformer(self._config, device=device)
                pieces = os.path.join(self.load_path, "model_pieces")
                state = {name: torch.load(os.path.join(pieces, f"{name}.pt"), map_location=device)
                         for name in transformer.state_dict()}
                transformer.load_state_dict(state)
                if simplify:
                    transformer.simplify()
                self._cached_transformer = transformer
            return self._cached_transformer

    return LocalModelContext


def LocalModelContext(path: "str | os.PathLike[str]", device: Any = None) -> Any:  # noqa: N802
    """A TDB StandardModelContext serving the checkpoint at ``path`` (see :func:`make_model`)."""
    return _model_context_class()(path, device)


def make_app(path: "str | os.PathLike[str]") -> Any:
    """The FastAPI app: TDB's inference routes on the local model, and /nodewrite/stats."""
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware
    from neuron_explainer.activation_server.inference_routes import define_inference_routes
    from neuron_explainer.activation_server.interactive_model import InteractiveModel

    import nodewrite.tdb

    app = FastAPI(generate_unique_id_function=lambda route: f"{route.tags[0]}-{route.name}")
    app.add_middleware(CORSMiddleware, allow_origin_regex=r"https?://(localhost|127\.0\.0\.1)(:\d+)?$",
                       allow_credentials=True, allow_methods=["*"], allow_headers=["*"])
    model = InteractiveModel.from_standard_model_context(LocalModelContext(path))
    define_inference_routes(app=app, model=model, mlp_autoencoder_name=None, attn_autoencoder_name=None)

    @app.get("/nodewrite/stats", tags=["nodewrite"])
    def nodewrite_stats() -> dict:
        return {"installed": nodewrite.tdb.is_installed(), **nodewrite.tdb.stats}

    return app


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodewrite.tdb.local", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-model", help="write a random-weight TDB Transformer to DIR")
    make.add_argument("dir")
    make.add_argument("--n-layers", type=int, default=2)
    make.add_argument("--d-model", type=int, default=64)
    make.add_argument("--n-heads", type=int, default=4)
    make.add_argument("--ctx-window", type=int, default=64)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--if-missing", action="store_true", help="do nothing if DIR/config.json exists")
    serve = sub.add_parser("serve", help="TDB's inference routes on the model in DIR, with the drop-in")
    serve.add_argument("dir")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--without-dropin", action="store_true", help="TDB's own derivers (for comparison)")
    args = parser.parse_args(argv)

    src = os.environ.get("NODEWRITE_TDB_SRC")
    if src and src not in sys.path:
        sys.path.insert(0, src)
    if args.command == "make-model":
        if args.if_missing and (Path(args.dir) / "config.json").exists():
            print(f"{args.dir}: a model is there already")
            return 0
        path = make_model(args.dir, n_layers=args.n_layers, d_model=args.d_model, n_heads=args.n_heads,
                          ctx_window=args.ctx_window, seed=args.seed)
        print(f"wrote a random-weight TDB Transformer to {path}")
        return 0
    import uvicorn

    import nodewrite.tdb

    if not args.without_dropin:
        nodewrite.tdb.install()
    app = make_app(args.dir)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

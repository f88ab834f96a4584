"""TDB's activation server with the drop-in, offline, on a local model (nodewrite.tdb.local).

A random-weight TDB Transformer is written to a temporary directory with TDB's own
save_checkpoint; ``python -m nodewrite.tdb.local serve DIR`` is started on 127.0.0.1 with every
HTTP(S) proxy variable pointing at a closed port and an empty tiktoken cache (so any download
fails instead of happening); two requests of the kind TDB's UI sends are posted:

- ``/batched_tdb``: the node table of a prompt (neurons and heads; top and bottom 5 of each
  column, the logit-difference loss of a target and a distractor token);
- ``/derived_scalars``: one neuron's ``mlp_write_norm`` at every token.

Each answer must equal TDB's own (the same request to TDB's InteractiveModel in this process,
drop-in not installed): same tokens, same nodes, values within 1e-5 * max(1, max |value|)
(float32 sums in another order); and ``GET /nodewrite/stats`` must show that the library served
the write-family values (``native`` up, ``torch`` unchanged). The server is stopped at the end
(terminate, then kill after 10 s); starting it may take at most STARTUP_S.

Needs NODEWRITE_TDB_SRC and the server's packages (fastapi, uvicorn, tiktoken: ``make .venv-tdb``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tdb_support  # noqa: E402


def _reason():
    reason = tdb_support.tdb_unavailable_reason()
    if reason is not None:
        return reason
    try:
        import fastapi  # noqa: F401
        import tiktoken  # noqa: F401
        import uvicorn  # noqa: F401
        from neuron_explainer.activation_server import inference_routes  # noqa: F401
    except ImportError as e:
        return f"TDB's activation server cannot be imported here ({e}); build its venv: make .venv-tdb NODEWRITE_TDB_SRC=..."
    return None


REASON = _reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

STARTUP_S = 90.0
REQUEST_S = 120.0
PROMPT = "The cat sat on the mat"
TDB_REQUEST = {
    "subRequests": [
        {
            "prompt": PROMPT,
            "targetTokens": ["a"],
            "distractorTokens": ["b"],
            "componentTypeForMlp": "neuron",
            "componentTypeForAttention": "attention_head",
            "topAndBottomKForNodeTable": 5,
            "hideEarlyLayersWhenAblating": False,
            "nodeAblations": None,
            "upstreamNodeToTrace": None,
            "downstreamNodeToTrace": None,
        }
    ]
}
DERIVED_SCALARS_REQUEST = {
    "inferenceRequestSpec": {"prompt": PROMPT},
    "derivedScalarsRequestSpec": {"dst": "mlp_write_norm", "layerIndex": 1, "activationIndex": 5},
}
# no proxy for our own requests to 127.0.0.1 (the server's environment has dead proxies)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from nodewrite.tdb.local import make_model

    return make_model(tmp_path_factory.mktemp("tdb-local-model"), n_layers=2, d_model=64, n_heads=4, seed=0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> dict:
    with _OPENER.open(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url: str, body: dict) -> dict:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with _OPENER.open(req, timeout=REQUEST_S) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{url}: HTTP {e.code}: {e.read()[:2000]!r}") from None


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    port = _free_port()
    log_path = tmp_path_factory.mktemp("tdb-server") / "server.log"
    dead = "http://127.0.0.1:9"  # discard port: nothing listens, a download fails at once
    env = dict(os.environ)
    env.update(
        HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead, ALL_PROXY=dead,
        NO_PROXY="", no_proxy="",
        TIKTOKEN_CACHE_DIR=str(tmp_path_factory.mktemp("empty-tiktoken-cache")),
        PYTHONPATH=os.pathsep.join(p for p in (os.environ[tdb_support.TDB_ENV], env.get("PYTHONPATH")) if p),
    )
    env.pop("OPENAI_API_KEY", None)  # the local route needs none
    cmd = [sys.executable, "-m", "nodewrite.tdb.local", "serve", str(model_dir), "--host", "127.0.0.1",
           "--port", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                _get(base + "/nodewrite/stats", timeout=2.0)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"no answer within {STARTUP_S} s:\n{log_path.read_text()[-4000:]}") from None
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _tdb_answers(model_dir) -> tuple[dict, dict]:
    """The two requests answered by TDB's own derivers, in this process."""
    import nodewrite.tdb as ntdb
    from neuron_explainer.activation_server.interactive_model import InteractiveModel
    from neuron_explainer.activation_server.requests_and_responses import (
        BatchedTdbRequest,
        DerivedScalarsRequest,
    )
    from nodewrite.tdb.local import LocalModelContext

    ntdb.uninstall()
    model = InteractiveModel.from_standard_model_context(LocalModelContext(model_dir))
    batched = asyncio.run(model.handle_batched_tdb_request(BatchedTdbRequest.parse_obj(TDB_REQUEST)))
    scalars = asyncio.run(model.get_derived_scalars(DerivedScalarsRequest.parse_obj(DERIVED_SCALARS_REQUEST)))
    return json.loads(batched.json(by_alias=True)), json.loads(scalars.json(by_alias=True))


def _close(got, want, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, what
    tol = 1e-5 * max(1.0, float(np.abs(want).max(initial=0.0)))
    assert float(np.abs(got - want).max(initial=0.0)) <= tol, what


def _by_node(table: dict) -> dict:
    """{(node type, indices, layer, pass): {column: value}} of a node table."""
    out = {}
    for i, node in enumerate(table["nodeIndices"]):
        key = (node["nodeType"], tuple(node["tensorIndices"]), node["layerIndex"], node["passType"])
        out.setdefault(key, {g: v[i] for g, v in table["activationsByGroupId"].items()})
    return out


def _tokens(response: dict) -> list:
    return response["inferenceAndTokenData"]["tokensAsInts"]


def test_the_ui_requests_are_answered_by_nodewrite_offline(server, model_dir):
    want_batched, want_scalars = _tdb_answers(model_dir)

    before = _get(server + "/nodewrite/stats")
    assert before["installed"] is True
    got_batched = _post(server + "/batched_tdb", TDB_REQUEST)
    middle = _get(server + "/nodewrite/stats")
    got_scalars = _post(server + "/derived_scalars", DERIVED_SCALARS_REQUEST)
    after = _get(server + "/nodewrite/stats")

    # the node table: four write-family values (write norm and write to the final residual grad
    # of neurons and heads) at each of the two layers went through the library
    assert middle["native"] - before["native"] >= 8, (before, middle)
    assert after["native"] - middle["native"] >= 1, (middle, after)
    assert after["torch"] == before["torch"], (before, after)

    (got,) = got_batched["inferenceSubResponses"]
    (want,) = want_batched["inferenceSubResponses"]
    assert _tokens(got["inferenceResponse"]) == _tokens(want["inferenceResponse"])
    _close(got["inferenceResponse"]["inferenceAndTokenData"]["loss"],
           want["inferenceResponse"]["inferenceAndTokenData"]["loss"], "loss")
    table, want_table = (r["processingResponseDataByName"]["topKComponents"] for r in (got, want))
    groups = want_table["activationsByGroupId"]
    assert {"write_norm", "direction_write"} <= set(groups)
    assert set(table["activationsByGroupId"]) == set(groups)
    for group, values in groups.items():
        assert np.abs(values).max() > 0, f"{group}: all zero (a degenerate model would prove nothing)"
    # Node by node: every node both tables hold has the same values in every column. TDB's
    # top-k may pick other nodes among exact ties (a head's key after its query writes 0), so
    # a node only one table holds must have a 0 in some column, in that table.
    got_nodes, want_nodes = _by_node(table), _by_node(want_table)
    assert len(table["nodeIndices"]) == len(want_table["nodeIndices"])
    common = set(got_nodes) & set(want_nodes)
    assert len(common) > len(want_nodes) // 2, "most nodes must be the same ones"
    for node in common:
        for group in groups:
            _close(got_nodes[node][group], want_nodes[node][group], (node, group))
    for nodes in (got_nodes, want_nodes):
        for node in set(nodes) - common:
            assert 0.0 in nodes[node].values(), (node, nodes[node])

    assert _tokens(got_scalars) == _tokens(want_scalars)
    values = want_scalars["derivedScalarsResponseData"]["activations"]
    assert len(values) == len(PROMPT) and np.abs(values).max() > 0
    _close(got_scalars["derivedScalarsResponseData"]["activations"], values, "mlp_write_norm")

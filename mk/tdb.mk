# transformer-debugger (TDB) drop-in: nodewrite.tdb against TDB's own code, locally.
#   make .venv-tdb NODEWRITE_TDB_SRC=...  .venv-tdb/ with torch (from the CPU wheel file
#                    TDB_TORCH_WHEEL, default TORCH_WHEEL of mk/python.mk, installed first so pip
#                    keeps it), what TDB's activation server imports (TDB_PACKAGES, from PyPI),
#                    pytest, nodewrite, and TDB's checkout on its path (a .pth file; nothing is
#                    written into the checkout). Once; a few minutes.
#   make test-tdb    python_tests/test_tdb_*.py and the docs' TDB blocks (test_docs.py) with TDB on
#                    the path: the drop-in against TDB's own derivers, and TDB's activation server
#                    on a local random-weight model, offline (not part of `make test`: CI has no
#                    TDB, and there those tests skip)
#   make serve-tdb-local   TDB's activation server on a local model with the drop-in (docs/tdb.md)
#   make bench-tdb   the original deriver vs the drop-in inside TDB's derive_from_raw (part of
#                    `make bench`; prints a skip unless NODEWRITE_TDB_SRC is set)
# NODEWRITE_TDB_SRC = a checkout of openai/transformer-debugger (the directory holding
# neuron_explainer/). TDB_PYTHON = a Python with torch, TDB's imports and nodewrite installed;
# default: .venv-tdb's (built from NODEWRITE_TDB_SRC by `make .venv-tdb`). Nothing here fetches
# TDB or any model.
NODEWRITE_TDB_SRC ?=
TDB_VENV := .venv-tdb
TDB_VENV_PY := $(TDB_VENV)/bin/python
TDB_PYTHON ?= $(TDB_VENV_PY)
TDB_TORCH_WHEEL ?= $(TORCH_WHEEL)
# What the activation server's inference routes import (TDB's setup.py list without its dev tools:
# mypy, pre-commit, pytest-asyncio; scikit-learn is imported only by the explanation scorers).
TDB_PACKAGES := numpy pytest tiktoken aiohttp click fire httpx orjson "pydantic<2" "fastapi==0.97" starlette uvicorn
TDB_NEEDS_VENV := $(if $(and $(strip $(NODEWRITE_TDB_SRC)),$(filter $(TDB_VENV_PY),$(TDB_PYTHON))),.venv-tdb)
TDB_LOCAL_MODEL ?= build/tdb-local-model
TDB_PORT ?= 8000

BENCH_TARGETS += bench-tdb

.PHONY: .venv-tdb bench-tdb test-tdb serve-tdb-local

$(TDB_VENV)/.deps-installed:
	@if [ -z "$(TDB_TORCH_WHEEL)" ]; then \
	  echo "no torch wheel (TDB_TORCH_WHEEL / TORCH_WHEEL empty: see mk/python.mk): refusing to let pip pull PyPI's multi-GB CUDA torch"; exit 1; fi
	python3 -m venv $(TDB_VENV)
	$(TDB_VENV_PY) -m pip install -q --upgrade pip "setuptools>=64" wheel
	@echo "installing torch from $(TDB_TORCH_WHEEL) (first, so the packages below keep it)"
	$(TDB_VENV_PY) -m pip install -q "$(TDB_TORCH_WHEEL)"
	$(TDB_VENV_PY) -m pip install -q $(TDB_PACKAGES)
	touch $@

$(TDB_VENV)/.nodewrite-installed: $(TDB_VENV)/.deps-installed $(LIB) $(PY_BINDING_SRCS) include/nodewrite.h | python-sysdeps
	rm -rf bindings/python/build  # setuptools does not see header changes: never link stale objects
	$(TDB_VENV_PY) -m pip install -q --no-build-isolation --no-deps --force-reinstall ./bindings/python
	touch $@

.venv-tdb: $(TDB_VENV)/.nodewrite-installed
ifeq ($(strip $(NODEWRITE_TDB_SRC)),)
	@echo ".venv-tdb: TDB not on its path: set NODEWRITE_TDB_SRC=/path/to/transformer-debugger"
else
	@test -d "$(NODEWRITE_TDB_SRC)/neuron_explainer" || { echo "NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) has no neuron_explainer/"; exit 1; }
	$(TDB_VENV_PY) -c "import site, os; open(os.path.join(site.getsitepackages()[0], 'transformer_debugger_src.pth'), 'w').write(os.path.abspath('$(NODEWRITE_TDB_SRC)') + '\n')"
	$(TDB_VENV_PY) -c "import os, torch, fastapi, uvicorn, tiktoken, nodewrite, neuron_explainer; print('torch', torch.__version__, '| fastapi', fastapi.__version__, '| nodewrite', nodewrite.__version__, '| TDB at', os.path.dirname(neuron_explainer.__path__[0]))"
endif

bench-tdb: $(TDB_NEEDS_VENV)
ifeq ($(strip $(NODEWRITE_TDB_SRC)),)
	@echo "bench-tdb: skipped: transformer-debugger not configured; run e.g."
	@echo "  make bench-tdb NODEWRITE_TDB_SRC=/path/to/transformer-debugger [TDB_PYTHON=/path/to/venv/bin/python]"
	@echo "  (default: .venv-tdb, built by 'make .venv-tdb') to compare with TDB's original deriver"
else
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) tools/bench_tdb.py $(BENCH_TDB_ARGS)
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) tools/bench_tdb_family.py --candidate tdb_family_candidate:candidate $(BENCH_TDB_FAMILY_ARGS)
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) tools/bench_tdb_edges.py $(BENCH_TDB_EDGES_ARGS)
endif

test-tdb: $(TDB_NEEDS_VENV)
ifeq ($(strip $(NODEWRITE_TDB_SRC)),)
	@echo "test-tdb: skipped: set NODEWRITE_TDB_SRC=/path/to/transformer-debugger (and TDB_PYTHON, default .venv-tdb)"
else
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) -m pytest -q -rs python_tests/test_tdb_dropin.py \
	  python_tests/test_tdb_family.py python_tests/test_tdb_fallback.py python_tests/test_tdb_server.py \
	  python_tests/test_tdb_edges.py
	@# a process of its own: the API reference it checks shows nodewrite.tdb.stats, which the tests above count up
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) -m pytest -q -rs python_tests/test_docs.py
endif

# TDB's activation server on a local random-weight model (written to TDB_LOCAL_MODEL the first
# time), the drop-in installed, on 127.0.0.1:TDB_PORT. Offline; see docs/tdb.md.
serve-tdb-local: $(TDB_NEEDS_VENV)
ifeq ($(strip $(NODEWRITE_TDB_SRC)),)
	@echo "serve-tdb-local: set NODEWRITE_TDB_SRC=/path/to/transformer-debugger (and TDB_PYTHON, default .venv-tdb)"
else
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) -m nodewrite.tdb.local make-model $(TDB_LOCAL_MODEL) --if-missing
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) -m nodewrite.tdb.local serve $(TDB_LOCAL_MODEL) --port $(TDB_PORT)
endif

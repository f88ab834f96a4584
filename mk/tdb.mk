# transformer-debugger (TDB) drop-in: nodewrite.tdb against TDB's own node_write, locally.
#   make bench-tdb   the original deriver vs the drop-in inside TDB's derive_from_raw (part of
#                    `make bench`; prints a skip unless NODEWRITE_TDB_SRC is set)
#   make test-tdb    python_tests/test_tdb_dropin.py, test_tdb_family.py and the docs' TDB blocks (test_docs.py) with TDB on the path (not part of `make
#                    test`: CI has no TDB, and there those tests skip)
# NODEWRITE_TDB_SRC = a checkout of openai/transformer-debugger (the directory holding
# neuron_explainer/). TDB_PYTHON = a Python with torch, TDB's few imports (numpy, tiktoken,
# aiohttp, pydantic<2) and nodewrite installed (pip install ./bindings/python); default: the
# repository's .venv. Nothing here fetches or builds TDB.
NODEWRITE_TDB_SRC ?=
TDB_PYTHON ?= .venv/bin/python
TDB_NEEDS_VENV := $(if $(and $(strip $(NODEWRITE_TDB_SRC)),$(filter .venv/bin/python,$(TDB_PYTHON))),.venv)

BENCH_TARGETS += bench-tdb

.PHONY: bench-tdb test-tdb

bench-tdb: $(TDB_NEEDS_VENV)
ifeq ($(strip $(NODEWRITE_TDB_SRC)),)
	@echo "bench-tdb: skipped: transformer-debugger not configured; run e.g."
	@echo "  make bench-tdb NODEWRITE_TDB_SRC=/path/to/transformer-debugger TDB_PYTHON=/path/to/venv/bin/python"
	@echo "  (a Python with torch, TDB's imports and nodewrite installed) to compare with TDB's original deriver"
else
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) tools/bench_tdb.py $(BENCH_TDB_ARGS)
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) tools/bench_tdb_family.py --candidate tdb_family_candidate:candidate $(BENCH_TDB_FAMILY_ARGS)
endif

test-tdb: $(TDB_NEEDS_VENV)
ifeq ($(strip $(NODEWRITE_TDB_SRC)),)
	@echo "test-tdb: skipped: set NODEWRITE_TDB_SRC=/path/to/transformer-debugger (and TDB_PYTHON)"
else
	NODEWRITE_TDB_SRC=$(NODEWRITE_TDB_SRC) $(TDB_PYTHON) -m pytest -q -rs python_tests/test_tdb_dropin.py python_tests/test_tdb_family.py \
	  python_tests/test_docs.py
endif

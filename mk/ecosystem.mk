# TransformerLens / SAELens / transformers adapters (nodewrite.tl, nodewrite.saelens): their tests,
# the example and the bench against TL in the same process.
#   make .venv-eco        .venv-eco/ with torch (from the CPU wheel ECO_TORCH_WHEEL, installed FIRST
#                         so pip keeps it), then from PyPI the pinned versions of
#                         mk/ecosystem-requirements.txt (transformer_lens < 4, sae_lens, transformers,
#                         ray[data], matplotlib, numpy, pytest), and nodewrite (once; a few minutes;
#                         again when the requirements file changes)
#   make test-ecosystem   python_tests/test_eco_*.py in .venv-eco (offline: random-weight models
#                         built from configs; nothing is downloaded at run time), including
#                         test_eco_ray.py (nodewrite.ray, and pickled models and stores in Ray
#                         tasks, on a local 2-CPU Ray)
#   make bench-ray        bindings/python/examples/bench_ray.py in .venv-eco (docs/ray.md)
#   make example-ray      examples/top_examples.py in .venv-eco (a local Ray)
#   make bench-tl         bindings/python/examples/bench_tl.py in .venv-eco (not part of `make bench`)
#   make example-tl       examples/tl_logit_diff_heatmap.py into build/tl_heatmap/
#   make example-edges    examples/edges_graph.py into build/edges_graph/ (a random model; torch, matplotlib)
# ECO_TORCH_WHEEL = the torch wheel file of .venv-eco; default $(TORCH_WHEEL) (see mk/python.mk).
# In `make test` (step "ecosystem"): when .venv-eco exists, or with ECO_REQUIRED=1 (what .ci/run
# passes: .venv-eco is then built first, and a failure to build it fails the run), the tests run in
# .venv-eco (its nodewrite package refreshed first); otherwise in .venv when transformer_lens and
# sae_lens import there; otherwise one "skipped" line (the .venv of `make test` has numpy, pytest
# and torch only).
ECO_VENV := .venv-eco
ECO_PY := $(ECO_VENV)/bin/python
ECO_TORCH_WHEEL ?= $(TORCH_WHEEL)
ECO_TESTS := $(wildcard python_tests/test_eco_*.py)
ECO_REQUIREMENTS := mk/ecosystem-requirements.txt
ECO_REQUIRED ?=
ECO_PYTEST := -m pytest -q -rfEs -W ignore::DeprecationWarning

TEST_TARGETS += test-ecosystem-if-available

.PHONY: .venv-eco test-ecosystem test-ecosystem-if-available bench-tl example-tl example-edges bench-ray example-ray

$(ECO_VENV)/.deps-installed: $(ECO_REQUIREMENTS)
	@if [ -z "$(ECO_TORCH_WHEEL)" ]; then \
	  echo "no torch wheel (ECO_TORCH_WHEEL / TORCH_WHEEL empty: see mk/python.mk): refusing to let pip pull PyPI's multi-GB CUDA torch"; exit 1; fi
	python3 -m venv $(ECO_VENV)
	$(ECO_PY) -m pip install -q --upgrade pip "setuptools>=64" wheel
	@echo "installing torch from $(ECO_TORCH_WHEEL) (first, so the packages below keep it)"
	$(ECO_PY) -m pip install -q "$(ECO_TORCH_WHEEL)"
	$(ECO_PY) -m pip install -q -r $(ECO_REQUIREMENTS)
	$(ECO_PY) -c "import torch, transformer_lens, sae_lens, transformers, ray; from importlib.metadata import version as v; print('torch', torch.__version__, '| transformer_lens', v('transformer_lens'), '| sae_lens', sae_lens.__version__, '| transformers', transformers.__version__, '| ray', ray.__version__)"
	touch $@

$(ECO_VENV)/.nodewrite-installed: $(ECO_VENV)/.deps-installed $(LIB) $(PY_BINDING_SRCS) include/nodewrite.h | python-sysdeps
	rm -rf bindings/python/build  # setuptools does not see header changes: never link stale objects
	$(ECO_PY) -m pip install -q --no-build-isolation --no-deps --force-reinstall ./bindings/python
	touch $@

.venv-eco: $(ECO_VENV)/.nodewrite-installed

test-ecosystem: .venv-eco
	$(ECO_PY) $(ECO_PYTEST) $(ECO_TESTS)

# Part of `make test` (see the top of this file).
ifneq ($(strip $(ECO_REQUIRED))$(wildcard $(ECO_VENV)/.deps-installed),)
TEST_BUILD_TARGETS += .venv-eco
test-ecosystem-if-available: test-ecosystem
else
test-ecosystem-if-available: .venv
	@if $(VENV_PY) -c "import torch, transformer_lens, sae_lens" >/dev/null 2>&1; then \
	  $(VENV_PY) $(ECO_PYTEST) $(ECO_TESTS); \
	else \
	  echo "test-ecosystem: skipped: transformer_lens/sae_lens not importable in $(VENV) and no $(ECO_VENV) (make test-ecosystem builds it)"; \
	fi
endif

bench-tl: .venv-eco
	$(ECO_PY) bindings/python/examples/bench_tl.py $(BENCH_TL_ARGS)

example-tl: .venv-eco
	MPLBACKEND=Agg $(ECO_PY) examples/tl_logit_diff_heatmap.py --out build/tl_heatmap $(EXAMPLE_TL_ARGS)

example-edges: .venv-eco
	MPLBACKEND=Agg $(ECO_PY) examples/edges_graph.py --out build/edges_graph $(EXAMPLE_EDGES_ARGS)

bench-ray: .venv-eco
	$(ECO_PY) bindings/python/examples/bench_ray.py $(BENCH_RAY_ARGS)

example-ray: .venv-eco
	$(ECO_PY) examples/top_examples.py $(EXAMPLE_RAY_ARGS)

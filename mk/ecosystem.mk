# TransformerLens / SAELens / transformers adapters (nodewrite.tl, nodewrite.saelens): their tests,
# the example and the bench against TL in the same process.
#   make .venv-eco        .venv-eco/ with torch (from the on-disk CPU wheel, installed FIRST so
#                         pip keeps it), transformer_lens, sae_lens, transformers, matplotlib,
#                         numpy, pytest and nodewrite (once; a few minutes)
#   make test-ecosystem   python_tests/test_eco_*.py in .venv-eco (offline: random-weight models
#                         built from configs; nothing is downloaded at run time)
#   make bench-tl         bindings/python/examples/bench_tl.py in .venv-eco (not part of `make bench`)
#   make example-tl       examples/tl_logit_diff_heatmap.py into build/tl_heatmap/
# `make test` runs the same tests in .venv when those packages import there, and prints one
# "skipped" line when they do not (the .venv of `make test` has numpy, pytest and torch only).
ECO_VENV := .venv-eco
ECO_PY := $(ECO_VENV)/bin/python
ECO_TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-*cpu*-cp311*.whl) $(wildcard /opt/wheels/torch-*.whl))
ECO_TESTS := $(wildcard python_tests/test_eco_*.py)
ECO_PACKAGES := transformer_lens sae_lens transformers matplotlib numpy pytest

TEST_TARGETS += test-ecosystem-if-available

.PHONY: .venv-eco test-ecosystem test-ecosystem-if-available bench-tl example-tl

$(ECO_VENV)/.deps-installed:
	@if [ -z "$(ECO_TORCH_WHEEL)" ]; then \
	  echo "no torch wheel in /opt/wheels: refusing to let pip pull PyPI's multi-GB CUDA torch"; exit 1; fi
	python3 -m venv $(ECO_VENV)
	$(ECO_PY) -m pip install -q --upgrade pip "setuptools>=64" wheel
	@echo "installing torch from $(ECO_TORCH_WHEEL) (first, so the packages below keep it)"
	$(ECO_PY) -m pip install -q "$(ECO_TORCH_WHEEL)"
	$(ECO_PY) -m pip install -q $(ECO_PACKAGES)
	$(ECO_PY) -c "import torch, transformer_lens, sae_lens, transformers; print('torch', torch.__version__, '| transformer_lens', transformer_lens.__version__ if hasattr(transformer_lens, '__version__') else '?', '| sae_lens', sae_lens.__version__, '| transformers', transformers.__version__)"
	touch $@

$(ECO_VENV)/.nodewrite-installed: $(ECO_VENV)/.deps-installed $(LIB) $(PY_BINDING_SRCS) include/nodewrite.h | python-sysdeps
	$(ECO_PY) -m pip install -q --no-build-isolation --no-deps --force-reinstall ./bindings/python
	touch $@

.venv-eco: $(ECO_VENV)/.nodewrite-installed

test-ecosystem: .venv-eco
	$(ECO_PY) -m pytest -q -rs -W ignore::DeprecationWarning $(ECO_TESTS)

# Part of `make test`: runs the ecosystem tests with .venv's Python when torch, transformer_lens
# and sae_lens import there; otherwise ONE line says they were skipped and how to run them.
test-ecosystem-if-available: .venv
	@if $(VENV_PY) -c "import torch, transformer_lens, sae_lens" >/dev/null 2>&1; then \
	  $(VENV_PY) -m pytest -q -rs -W ignore::DeprecationWarning $(ECO_TESTS); \
	else \
	  echo "test-ecosystem: skipped: transformer_lens/sae_lens not importable in $(VENV) (run 'make test-ecosystem' for its own .venv-eco)"; \
	fi

bench-tl: .venv-eco
	$(ECO_PY) bindings/python/examples/bench_tl.py $(BENCH_TL_ARGS)

example-tl: .venv-eco
	MPLBACKEND=Agg $(ECO_PY) examples/tl_logit_diff_heatmap.py --out build/tl_heatmap $(EXAMPLE_TL_ARGS)

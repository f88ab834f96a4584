# Python binding (bindings/python), its tests (python_tests/), the demo and the Python bench.
#   make .venv          .venv/ at the repository root with numpy, pytest, nodewrite (+ torch
#                       from the on-disk CPU wheel when there is one; never from PyPI)
#   make test-python    pytest python_tests/
#   make demo-python    bindings/python/examples/demo.py (this is `make demo`)
#   make bench-python   bindings/python/examples/bench.py (part of `make bench`; and
#                       bench-python-sets / bench-python-family: bench_sets.py, bench_family.py)
#   make bench-edges-torch  bindings/python/examples/bench_edges.py: every edge DST against its
#                       contraction-first torch formulation at T = 1024 and 4096 (not part of
#                       `make bench`: up to ~12 GB resident at T = 4096; BENCH_EDGES_TORCH_ARGS)
#   make test-python-asan  the binding under ASan+UBSan, the Python tests against it (opt-in)
# TORCH_WHEEL = a torch CPU wheel file for python3 (make test TORCH_WHEEL=/path/to/torch-X+cpu-cp311-....whl).
#   Default: the first torch-*cpu*-cpXY-*.whl (XY: python3's version) in pip's find-links directories
#   (the environment's PIP_FIND_LINKS, else `python3 -m pip config get global.find-links`).
#   Empty (TORCH_WHEEL= , or no such wheel): .venv has no torch and the torch tests skip; .venv-eco
#   cannot be built (pip would pull PyPI's multi-GB CUDA torch instead). Torch never comes from PyPI.
VENV := .venv
VENV_PY := $(VENV)/bin/python
PY_TAG = cp$(shell python3 -c 'import sys; print("%d%d" % sys.version_info[:2])')
WHEEL_DIRS = $(or $(PIP_FIND_LINKS),$(shell python3 -m pip config get global.find-links 2>/dev/null))
TORCH_WHEEL ?= $(firstword $(wildcard $(addsuffix /torch-*cpu*-$(PY_TAG)-*.whl,$(WHEEL_DIRS))))
TEST_BUILD_TARGETS += .venv
PY_BINDING_SRCS := $(shell find bindings/python \( -path '*/build' -o -path '*/examples' \) -prune -o -type f \( -name '*.py' -o -name '*.pyi' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.toml' -o -name py.typed \) -print)

TEST_TARGETS += test-python
BENCH_TARGETS += bench-python bench-python-sets bench-python-family
DEMO_TARGET := demo-python

.PHONY: .venv python-sysdeps test-python demo-python bench-python bench-python-sets bench-python-family

# Debian's pybind11-dev and python3-dev: the build dependencies of the extension.
python-sysdeps:
	@dpkg -s pybind11-dev python3-dev >/dev/null 2>&1 || { \
	  echo "installing pybind11-dev python3-dev"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pybind11-dev python3-dev; }

# The virtualenv with the test and demo dependencies (once).
$(VENV)/.deps-installed:
	python3 -m venv $(VENV)
	$(VENV_PY) -m pip install -q --upgrade "setuptools>=64" wheel numpy pytest
	@if [ -n "$(TORCH_WHEEL)" ]; then \
	  echo "installing torch from $(TORCH_WHEEL)"; \
	  $(VENV_PY) -m pip install -q "$(TORCH_WHEEL)"; \
	else echo "no torch wheel (TORCH_WHEEL is empty: see mk/python.mk): torch tests and the torch bench will be skipped"; fi
	touch $@

# The package itself, rebuilt when the binding, the header or the library change.
$(VENV)/.nodewrite-installed: $(VENV)/.deps-installed $(LIB) $(PY_BINDING_SRCS) include/nodewrite.h | python-sysdeps
	rm -rf bindings/python/build  # setuptools does not see header changes: never link stale objects
	$(VENV_PY) -m pip install -q --no-build-isolation --no-deps --force-reinstall ./bindings/python
	$(VENV_PY) -c "import nodewrite, sys; print('nodewrite', nodewrite.__version__, 'ABI', nodewrite.abi_version(), 'installed in', sys.prefix)"
	touch $@

.venv: $(VENV)/.nodewrite-installed

test-python: .venv
	$(VENV_PY) -m pytest -q python_tests/ --ignore-glob="python_tests/test_eco_*"  # those: mk/ecosystem.mk

demo-python: .venv
	$(VENV_PY) bindings/python/examples/demo.py $(FIXTURES)

bench-python: .venv
	$(VENV_PY) bindings/python/examples/bench.py

# Node sets (issue 9) and the write family (issue 11) against torch/numpy baselines.
bench-python-sets: .venv
	$(VENV_PY) bindings/python/examples/bench_sets.py

bench-python-family: .venv
	$(VENV_PY) bindings/python/examples/bench_family.py

# Edges (issue 20) against a hand-written torch formulation, in the same process (docs/performance.md).
BENCH_EDGES_TORCH_ARGS ?= --tokens 1024 4096 --threads 2
.PHONY: bench-edges-torch
bench-edges-torch: .venv
	$(VENV_PY) bindings/python/examples/bench_edges.py $(BENCH_EDGES_TORCH_ARGS)

# Opt-in (not part of `make test`): the binding rebuilt with AddressSanitizer + UBSan into
# build/asan-python/ and the Python tests run against it (ASan preloaded into the venv's Python).
ASAN_PY_DIR := build/asan-python
.PHONY: test-python-asan
test-python-asan: .venv $(LIB)
	rm -rf $(ASAN_PY_DIR) && mkdir -p $(ASAN_PY_DIR)
	cp -r bindings/python/nodewrite $(ASAN_PY_DIR)/ && cp $(LIB) $(ASAN_PY_DIR)/nodewrite/
	$(CXX) -std=c++17 -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -shared -fPIC \
	  -Iinclude -I$$($(VENV_PY) -c "import sysconfig; print(sysconfig.get_paths()['include'])") \
	  $(wildcard bindings/python/src/*.cpp) -o $(ASAN_PY_DIR)/nodewrite/_core$$($(VENV_PY) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))") \
	  -L$(ASAN_PY_DIR)/nodewrite -lnodewrite '-Wl,-rpath,$$ORIGIN'
	cd $(ASAN_PY_DIR) && LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  NODEWRITE_FIXTURES=$(CURDIR)/$(FIXTURES) PYTHONPATH=$(CURDIR)/$(ASAN_PY_DIR) \
	  $(CURDIR)/$(VENV_PY) -m pytest -q -p no:cacheprovider $(addprefix $(CURDIR)/python_tests/,test_parity.py test_inputs.py test_bad_inputs.py test_threads.py test_fuzz.py test_hostile.py test_first_hour.py)

# nodewrite — build, test, demo, bench.
#   make test    everything CI runs: Swift tests, C tests, Python tests (and the TransformerLens/SAELens
#                tests when .venv-eco exists: mk/ecosystem.mk). Each step's output goes to
#                build/test-logs/<step>.log; the screen shows closing lines, failures, and a table of
#                steps (passed, failed, skipped, seconds) ending in one line "N passed, N failed".
#   make demo    node writes for each node type on the bundled fixture model
#   make bench   medians and ratios at GPT-2-small dimensions (not a test)
SHELL := /bin/bash
.DEFAULT_GOAL := test

SWIFT ?= swift
CC ?= cc
LIB := .build/release/libnodewrite.so
FIXTURES := Tests/NodeWriteTests/Fixtures

# Each mk/*.mk appends its targets to these lists (TEST_BUILD_TARGETS: built first by `make test`,
# timed in its table, not counted as tests).
TEST_TARGETS :=
TEST_BUILD_TARGETS := lib
# A test program that prints no counts of its own counts as one check: $(ONE_CHECK) prog args.
ONE_CHECK := scripts/one-check.sh
BENCH_TARGETS :=
DEMO_TARGET := demo-c

.PHONY: test demo bench lib clean
lib: $(LIB)
$(LIB): Package.swift scripts/build-lib.sh include/nodewrite.h include/nodewrite.map $(shell find Sources -name '*.swift' -o -name '*.c' -o -name '*.h')
	scripts/build-lib.sh

include mk/*.mk

# make install PREFIX=/usr/local: the header, the library and nodewrite.pc (pkg-config).
PREFIX ?= /usr/local
NW_VERSION = $(shell sed -n 's/^\#define NW_VERSION_STRING "\(.*\)"/\1/p' include/nodewrite.h)
.PHONY: install
install: $(LIB)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/nodewrite.h $(DESTDIR)$(PREFIX)/include/nodewrite.h
	install -m 755 $(LIB) $(DESTDIR)$(PREFIX)/lib/libnodewrite.so
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$${prefix}/lib' 'includedir=$${prefix}/include' '' \
	  'Name: nodewrite' 'Description: What one transformer node writes into the residual stream' \
	  'Version: $(NW_VERSION)' 'Libs: -L$${libdir} -lnodewrite' 'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nodewrite.pc

# Every code block of README.md and docs/*.md (python_tests/doc_blocks.py says how each kind is
# run; C: built from the tree and from an install), then the docs tests (python_tests/test_docs.py:
# docs/python-api.md is what tools/gen_python_api.py writes, block markers, README length).
#   make docs   rewrites docs/python-api.md from the installed package's docstrings
TEST_TARGETS += test-readme
.PHONY: test-readme docs
test-readme: .venv $(LIB)
	rm -rf build/readme-prefix
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/build/readme-prefix
	$(VENV_PY) python_tests/run_readme_blocks.py $(VENV_PY) build/readme-prefix; rc=$$?; \
	  $(VENV_PY) -m pytest -q python_tests/test_docs.py && exit $$rc

docs: .venv
	$(VENV_PY) tools/gen_python_api.py docs/python-api.md

# Every step runs (a failure does not stop the others); the exit status is non-zero when one failed.
# One step alone with its whole output: make test-swift, make test-python, ...
# .ci/run calls the runner itself with `make test-plan`'s arguments, so that its last line is the totals.
TEST_PLAN = $(addprefix --build ,$(TEST_BUILD_TARGETS)) $(TEST_TARGETS)
.PHONY: test-plan
test:
	@python3 scripts/run-suites.py --make "$(MAKE)" --logs build/test-logs $(TEST_PLAN)
test-plan:
	@echo $(TEST_PLAN)
bench: $(BENCH_TARGETS)
demo: $(DEMO_TARGET)

clean:
	rm -rf .build .build-* .venv build

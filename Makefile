# nodewrite — build, test, demo, bench.
#   make test    everything CI runs: Swift tests, C tests, Python tests
#   make demo    node writes for each node type on the bundled fixture model
#   make bench   medians and ratios at GPT-2-small dimensions (not a test)
SHELL := /bin/bash
.DEFAULT_GOAL := test

SWIFT ?= swift
CC ?= cc
LIB := .build/release/libnodewrite.so
FIXTURES := Tests/NodeWriteTests/Fixtures

# Each mk/*.mk appends its targets to these lists.
TEST_TARGETS :=
BENCH_TARGETS :=
DEMO_TARGET := demo-c

.PHONY: test demo bench lib clean
lib: $(LIB)
$(LIB): Package.swift scripts/build-lib.sh include/nodewrite.h include/nodewrite.map $(shell find Sources -name '*.swift' -o -name '*.c' -o -name '*.h')
	scripts/build-lib.sh

include mk/*.mk

test: $(TEST_TARGETS)
bench: $(BENCH_TARGETS)
demo: $(DEMO_TARGET)

clean:
	rm -rf .build .build-* .venv build

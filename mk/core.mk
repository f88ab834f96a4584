# Swift core and the C ABI: swift test, the C parity test, the self-containment check.
CFLAGS_TEST := -std=c11 -O2 -Wall -Wextra -Werror -Iinclude
TEST_TARGETS += test-swift test-c test-kernels
TEST_BUILD_TARGETS += build-swift-tests

.PHONY: test-swift build-swift-tests test-c demo-c bench-c bench-checks
# The debug build of the tests, apart, so that `make test` times building and testing separately.
build-swift-tests:
	$(SWIFT) build --build-tests

test-swift:
	$(SWIFT) test

build/c_parity: tests_c/c_parity.c include/nodewrite.h | build
	$(CC) $(CFLAGS_TEST) -o $@ $< -ldl -lm

build:
	mkdir -p build

test-c: $(LIB) build/c_parity build/no_alloc build/edges_parity
	$(ONE_CHECK) tests_c/check_selfcontained.sh $(LIB)
	build/c_parity $(LIB) $(FIXTURES)
	build/no_alloc
	build/edges_parity $(FIXTURES)

# Edges (nw_derive_node) against every tdb_edges case, through the C ABI.
build/edges_parity: tests_c/edges_parity.c tests_c/fixture.h tests_c/json_min.h include/nodewrite.h $(LIB) | build
	$(CC) $(CFLAGS_TEST) -Wno-unused-function -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release' -lm

BENCH_TARGETS += bench-c
build/bench: bench/bench.c bench/support.h include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O3 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release'

bench-c: build/bench
	build/bench $(BENCH_ARGS)

# Edges (nw_derive_node): each edge DST's median and peak extra memory at GPT-2-small shape.
BENCH_TARGETS += bench-edges
EDGES_ARGS ?= 1024 256 7 2
build/bench_edges: bench/edges.c include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O3 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release' -lm

.PHONY: bench-edges
bench-edges: build/bench_edges
	build/bench_edges $(EDGES_ARGS)

# What the input checks cost (the causality scan, checkpoint loading): bench/checks.c. Point
# LD_LIBRARY_PATH at another build's directory to measure that build with the same program.
BENCH_TARGETS += bench-checks
build/bench_checks: bench/checks.c bench/support.h include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release' -ldl

bench-checks: build/bench_checks
	build/bench_checks $(FIXTURES) $(BENCH_ARGS)

build/demo: examples/demo.c tests_c/fixture.h include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release' -lm

demo-c: build/demo
	build/demo $(FIXTURES)

build/no_alloc: tests_c/no_alloc.c include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release'

# The float32 kernels (Sources/_NodeWriteKernels), built from source with test hooks (-DNWK_TESTING):
# bit-for-bit against the naive fmaf chain on every path this CPU runs.
KERNEL_DIR := Sources/_NodeWriteKernels
KERNEL_SRCS := $(wildcard $(KERNEL_DIR)/*.c)
KERNEL_HDRS := $(wildcard $(KERNEL_DIR)/*.h $(KERNEL_DIR)/include/*.h)
.PHONY: test-kernels bench-kernels bench-store-policy
build/test_kernels: tests_c/kernels.c $(KERNEL_SRCS) $(KERNEL_HDRS) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -DNWK_TESTING -I$(KERNEL_DIR)/include -o $@ $< $(KERNEL_SRCS) -lm -lpthread

# The same test with tiny blocks (KC = 40, MC = 24), so that chains continue across many k-blocks.
build/test_kernels_tiny: tests_c/kernels.c $(KERNEL_SRCS) $(KERNEL_HDRS) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -DNWK_TESTING -DNWK_KC=40 -DNWK_KC_CACHED=24 -DNWK_CACHED_C_BYTES=4096 -DNWK_MC=24 -DNWK_KFULL=40 -DNWK_ROWS_B_FLOATS=2048 -I$(KERNEL_DIR)/include -o $@ $< $(KERNEL_SRCS) -lm -lpthread

test-kernels: build/test_kernels build/test_kernels_tiny
	$(ONE_CHECK) build/test_kernels
	$(ONE_CHECK) build/test_kernels_tiny

# Kernels vs OpenBLAS (bench-only dependency, installed on demand; never linked into libnodewrite).
BENCH_TARGETS += bench-kernels
OPENBLAS_CFLAGS = $(shell pkg-config --cflags openblas 2>/dev/null)
OPENBLAS_LIBS = $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
build/bench_kernels: bench/kernels.c $(KERNEL_SRCS) $(KERNEL_HDRS) | build
	@test -e /usr/include/x86_64-linux-gnu/cblas.h -o -e /usr/include/cblas.h || \
	  { echo "bench-kernels: installing libopenblas-dev"; apt-get install -y -qq libopenblas-dev >/dev/null; }
	$(CC) -std=c11 -O3 -Wall -Wextra -Werror -ffp-contract=off -I$(KERNEL_DIR)/include $(OPENBLAS_CFLAGS) -o $@ $< $(KERNEL_SRCS) $(OPENBLAS_LIBS) -lm -lpthread

bench-kernels: build/bench_kernels
	build/bench_kernels $(BENCH_ARGS)

# The output store policy (streamed vs cached stores, each followed by a read of the output):
# where NWK_STREAM_MIN_BYTES comes from (docs/performance.md, "Node sets"). Not part of `make bench`.
build/bench_store_policy: bench/store_policy.c $(KERNEL_SRCS) $(KERNEL_HDRS) | build
	$(CC) -std=c11 -O3 -Wall -Wextra -Werror -ffp-contract=off -I$(KERNEL_DIR)/include -o $@ $< $(KERNEL_SRCS) -lm -lpthread

bench-store-policy: build/bench_store_policy
	build/bench_store_policy $(BENCH_ARGS)

# Two builds of the library alternated in one process on every neuron at one token (a node set):
# make build/node_set_ab; build/node_set_ab OLD/libnodewrite.so NEW/libnodewrite.so [rounds [threads...]]
# (docs/performance.md, "Node sets"). Not part of `make bench`: it needs a second build.
build/node_set_ab: bench/node_set_ab.c include/nodewrite.h | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -o $@ $< -ldl

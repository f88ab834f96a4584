# Swift core and the C ABI: swift test, the C parity test, the self-containment check.
CFLAGS_TEST := -std=c11 -O2 -Wall -Wextra -Werror -Iinclude
TEST_TARGETS += test-swift test-c

.PHONY: test-swift test-c demo-c bench-c
test-swift:
	$(SWIFT) test

build/c_parity: tests_c/c_parity.c include/nodewrite.h | build
	$(CC) $(CFLAGS_TEST) -o $@ $< -ldl -lm

build:
	mkdir -p build

test-c: $(LIB) build/c_parity build/no_alloc
	tests_c/check_selfcontained.sh $(LIB)
	build/c_parity $(LIB) $(FIXTURES)
	build/no_alloc

BENCH_TARGETS += bench-c
build/bench: bench/bench.c include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O3 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release'

bench-c: build/bench
	build/bench $(BENCH_ARGS)

build/demo: examples/demo.c tests_c/fixture.h include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release' -lm

demo-c: build/demo
	build/demo $(FIXTURES)

build/no_alloc: tests_c/no_alloc.c include/nodewrite.h $(LIB) | build
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -Iinclude -o $@ $< -L.build/release -lnodewrite -Wl,-rpath,'$$ORIGIN/../.build/release'

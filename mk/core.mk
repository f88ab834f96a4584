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

test-c: $(LIB) build/c_parity
	tests_c/check_selfcontained.sh $(LIB)
	build/c_parity $(LIB) $(FIXTURES)

# Reliability (issue 5): bad input, fuzzing, concurrency, leaks.
#   make test-reliability   boundary table + stress test + fuzz corpus replay, normal build (in `make test`)
#   make sanitize           the same under AddressSanitizer+LeakSanitizer, the stress test under
#                           ThreadSanitizer, and the C suite under valgrind (not in CI)
#   make fuzz               libFuzzer for FUZZ_SECONDS CPU-seconds over FUZZ_JOBS processes (not in CI)
#   make fuzz-merge         add the inputs of the last `make fuzz` that reach new code to fuzz/corpus
#   make fuzz-cmin          shrink fuzz/corpus to a set cover of its edges (hit counts ignored)
# Instrumented builds live in .build-fuzz (address + fuzzer) and .build-tsan (thread).
TEST_TARGETS += test-reliability

REL_CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -Iinclude
REL_LIBS = -L$(1) -lnodewrite -Wl,-rpath,$(CURDIR)/$(1) -lpthread -lm
# The Swift toolchain's clang carries libFuzzer and the sanitizer runtimes.
SWIFT_CLANG ?= $(dir $(realpath $(shell command -v $(SWIFT))))clang
SWIFT_LIBDIR = $(dir $(realpath $(shell command -v $(SWIFT))))../lib/swift/linux
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 2
FUZZ_MAX_LEN ?= 2048
FUZZ_TIMEOUT ?= 10
TSAN_CALLS ?= 10000
VALGRIND_CALLS ?= 300
REL_HDRS := include/nodewrite.h tests_c/support.h tests_c/edges_fixture.h tests_c/boundary_edges.h

.PHONY: test-reliability sanitize sanitize-asan sanitize-tsan sanitize-valgrind fuzz fuzz-merge fuzz-cmin fuzz-build

# ---- normal build (make test) ----
build/boundary: tests_c/boundary.c $(REL_HDRS) $(LIB) | build
	$(CC) $(REL_CFLAGS) -o $@ $< $(call REL_LIBS,.build/release)
build/stress: tests_c/stress.c $(REL_HDRS) $(LIB) | build
	$(CC) $(REL_CFLAGS) -o $@ $< $(call REL_LIBS,.build/release)
build/fuzz_replay: fuzz/fuzz_nodewrite.c fuzz/replay_main.h include/nodewrite.h $(LIB) | build
	$(CC) $(REL_CFLAGS) -DNW_FUZZ_REPLAY_MAIN -o $@ $< $(call REL_LIBS,.build/release)

test-reliability: build/boundary build/stress build/fuzz_replay
	tests_c/check_counted.sh $(LIB)
	build/boundary
	$(ONE_CHECK) build/stress 8 10000
	$(ONE_CHECK) build/fuzz_replay fuzz/corpus

# ---- AddressSanitizer + LeakSanitizer (the library built with -sanitize=fuzzer,address) ----
# -Xswiftc instruments the Swift targets only: the C targets (the kernels, the shims) need -Xcc too,
# or ASan does not see their reads, libFuzzer gets no coverage from them and TSan no accesses.
FUZZ_LIB := .build-fuzz/release/libnodewrite.so
$(FUZZ_LIB): Package.swift include/nodewrite.h include/nodewrite.map $(shell find Sources -name '*.swift' -o -name '*.c' -o -name '*.h')
	nice $(SWIFT) build -c release --product nodewrite --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address \
	  -Xcc -fsanitize=fuzzer-no-link,address
.build-fuzz/fuzz_nodewrite: fuzz/fuzz_nodewrite.c include/nodewrite.h $(FUZZ_LIB)
	$(SWIFT_CLANG) -std=c11 -O1 -g -Wall -Wextra -Werror -Iinclude -fsanitize=fuzzer,address -fuse-ld=lld -o $@ $< \
	  $(call REL_LIBS,.build-fuzz/release)
.build-fuzz/%_asan: tests_c/%.c $(REL_HDRS) $(FUZZ_LIB)
	$(SWIFT_CLANG) -std=c11 -O1 -g -Wall -Wextra -Werror -Iinclude -fsanitize=address,fuzzer-no-link -fuse-ld=lld \
	  -o $@ $< $(call REL_LIBS,.build-fuzz/release)
fuzz-build: .build-fuzz/fuzz_nodewrite

sanitize-asan: .build-fuzz/boundary_asan .build-fuzz/stress_asan .build-fuzz/fuzz_nodewrite
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 .build-fuzz/boundary_asan
	ASAN_OPTIONS=detect_leaks=1 .build-fuzz/stress_asan 8 2000
	.build-fuzz/fuzz_nodewrite -runs=0 -detect_leaks=1 fuzz/corpus

# ---- ThreadSanitizer: the stress test, 0 reports ----
TSAN_LIB := .build-tsan/release/libnodewrite.so
$(TSAN_LIB): Package.swift include/nodewrite.h include/nodewrite.map $(shell find Sources -name '*.swift' -o -name '*.c' -o -name '*.h')
	nice $(SWIFT) build -c release --product nodewrite --scratch-path .build-tsan -Xswiftc -sanitize=thread -Xcc -fsanitize=thread
# The toolchain's TSan runtime intercepts libdispatch: link the toolchain's libdispatch and BlocksRuntime.
.build-tsan/stress: tests_c/stress.c $(REL_HDRS) $(TSAN_LIB)
	$(SWIFT_CLANG) -std=c11 -O1 -g -Wall -Wextra -Werror -Iinclude -fsanitize=thread -fuse-ld=lld -o $@ $< \
	  $(call REL_LIBS,.build-tsan/release) -L$(SWIFT_LIBDIR) -ldispatch -lBlocksRuntime -Wl,-rpath,$(SWIFT_LIBDIR)
sanitize-tsan: .build-tsan/stress
	TSAN_OPTIONS=halt_on_error=1:exitcode=66 .build-tsan/stress 8 $(TSAN_CALLS)

# ---- valgrind: the C suite on the normal build, 0 bytes definitely/indirectly lost ----
VALGRIND := valgrind --leak-check=full --show-possibly-lost=no --errors-for-leak-kinds=definite,indirect --error-exitcode=1
# valgrind 3.19 cannot read the DWARF 5 debug info of the Swift-built library: run the same
# binaries (RUNPATH, so LD_LIBRARY_PATH wins) against a copy without debug info.
# Swift runtime metadata caches show as "possibly lost"/"still reachable": not errors here.
sanitize-valgrind: build/boundary build/stress build/fuzz_replay
	@command -v valgrind >/dev/null || (apt-get update && apt-get install -y valgrind)
	mkdir -p .build-valgrind
	objcopy --strip-debug $(LIB) .build-valgrind/libnodewrite.so
	LD_LIBRARY_PATH=.build-valgrind $(VALGRIND) build/boundary
	LD_LIBRARY_PATH=.build-valgrind $(VALGRIND) build/stress 8 $(VALGRIND_CALLS)
	LD_LIBRARY_PATH=.build-valgrind $(VALGRIND) build/fuzz_replay fuzz/corpus

sanitize: sanitize-asan sanitize-tsan sanitize-valgrind

# ---- fuzzing ----
# Fork mode: FUZZ_JOBS processes for FUZZ_SECONDS/FUZZ_JOBS wall seconds. New inputs go to
# fuzz-out/corpus (seeded from fuzz/corpus), crashes to fuzz-out/ (the run stops at the first).
fuzz: .build-fuzz/fuzz_nodewrite
	mkdir -p fuzz-out/corpus
	cd fuzz-out && time nice ../.build-fuzz/fuzz_nodewrite -fork=$(FUZZ_JOBS) \
	  -max_total_time=$$(( $(FUZZ_SECONDS) / $(FUZZ_JOBS) )) -max_len=$(FUZZ_MAX_LEN) -timeout=$(FUZZ_TIMEOUT) -artifact_prefix=./ \
	  -print_final_stats=1 corpus ../fuzz/corpus
	@ls fuzz-out/crash-* fuzz-out/leak-* fuzz-out/oom-* fuzz-out/timeout-* 2>/dev/null && \
	  { echo "fuzz: findings above (add each to fuzz/corpus once fixed)"; exit 1; } || echo "fuzz: 0 findings"

fuzz-merge: .build-fuzz/fuzz_nodewrite
	.build-fuzz/fuzz_nodewrite -merge=1 -max_len=$(FUZZ_MAX_LEN) fuzz/corpus fuzz-out/corpus

# A set cover of the edges alone (-use_counters=0): a merge keeps every input that adds a hit-count
# bucket (~1,500 inputs, 6 MB after 10 CPU-minutes); edges alone keep ~200 with the same edges.
fuzz-cmin: .build-fuzz/fuzz_nodewrite
	rm -rf fuzz-out/cmin && mkdir -p fuzz-out/cmin
	nice .build-fuzz/fuzz_nodewrite -set_cover_merge=1 -use_counters=0 -use_value_profile=0 -max_len=$(FUZZ_MAX_LEN) \
	  fuzz-out/cmin fuzz/corpus
	rm -rf fuzz/corpus && mv fuzz-out/cmin fuzz/corpus

# Checkpoints on disk (issue 10): the safetensors loaders' C boundary table, their fuzz
# corpus replay (both part of `make test-reliability`, so of `make test`), and their fuzzer.
#   make fuzz-safetensors        libFuzzer on the loaders for FUZZ_SECONDS CPU-seconds over FUZZ_JOBS processes
#   make fuzz-safetensors-merge  add the inputs of the last run that reach new code to fuzz/corpus_safetensors
#   python3 fuzz/make_safetensors_seeds.py   rewrites the seed corpus (stdlib only)
# Included after reliability.mk (alphabetical), whose variables it uses.
CHECKPOINT_FIXTURES := $(FIXTURES)/checkpoints
FUZZ_ST_MAX_LEN ?= 16384

.PHONY: test-safetensors fuzz-safetensors fuzz-safetensors-merge
test-reliability: test-safetensors

build/safetensors: tests_c/safetensors.c include/nodewrite.h $(LIB) | build
	$(CC) $(REL_CFLAGS) -o $@ $< $(call REL_LIBS,.build/release)
build/fuzz_safetensors_replay: fuzz/fuzz_safetensors.c fuzz/replay_main.h include/nodewrite.h $(LIB) | build
	$(CC) $(REL_CFLAGS) -DNW_FUZZ_REPLAY_MAIN -o $@ $< $(call REL_LIBS,.build/release)

test-safetensors: build/safetensors build/fuzz_safetensors_replay
	build/safetensors $(CHECKPOINT_FIXTURES)
	$(ONE_CHECK) build/fuzz_safetensors_replay fuzz/corpus_safetensors

.build-fuzz/fuzz_safetensors: fuzz/fuzz_safetensors.c include/nodewrite.h $(FUZZ_LIB)
	$(SWIFT_CLANG) -std=c11 -O1 -g -Wall -Wextra -Werror -Iinclude -fsanitize=fuzzer,address -fuse-ld=lld -o $@ $< \
	  $(call REL_LIBS,.build-fuzz/release)

fuzz-safetensors: .build-fuzz/fuzz_safetensors
	mkdir -p fuzz-out-safetensors/corpus
	cd fuzz-out-safetensors && time nice ../.build-fuzz/fuzz_safetensors -fork=$(FUZZ_JOBS) \
	  -max_total_time=$$(( $(FUZZ_SECONDS) / $(FUZZ_JOBS) )) -max_len=$(FUZZ_ST_MAX_LEN) -timeout=$(FUZZ_TIMEOUT) \
	  -artifact_prefix=./ -print_final_stats=1 corpus ../fuzz/corpus_safetensors
	@ls fuzz-out-safetensors/crash-* fuzz-out-safetensors/leak-* fuzz-out-safetensors/oom-* fuzz-out-safetensors/timeout-* 2>/dev/null && \
	  { echo "fuzz-safetensors: findings above (add each to fuzz/corpus_safetensors once fixed)"; exit 1; } || echo "fuzz-safetensors: 0 findings"

fuzz-safetensors-merge: .build-fuzz/fuzz_safetensors
	.build-fuzz/fuzz_safetensors -merge=1 -max_len=$(FUZZ_ST_MAX_LEN) fuzz/corpus_safetensors fuzz-out-safetensors/corpus

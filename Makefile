# swiftlet build. One binary (build/swiftlet) from the modules under src/, one static
# archive per module, and one test binary per file in tests/unit/. A test file
# tests/unit/MODULE_*.c links MODULE and the modules it depends on (DEPS_MODULE), so a
# half-written module only breaks the targets that need it.
#   make            build/swiftlet (-O2, warnings on)
#   make test       all tests at -O2, then unit + golden tests again under ASan+UBSan (-O2)
#   make fuzz       libFuzzer targets (clang), each run FUZZ_SECONDS (default 60)
#   make bench      benchmarks (see bench/run.sh)
#   make soak       10-minute soak of the server (tests/e2e/soak.mjs; SOAK_SECONDS=600)
#   make serve      serve the built-in default model (or MODEL=path.gguf)
# BUILD=dir puts everything in another folder; MODE=asan builds with sanitizers.

BUILD ?= build
MODE  ?= release
CC    ?= gcc

ifeq ($(MODE),asan)
OPT = -O2 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else ifeq ($(MODE),fuzz)
CC  = clang
OPT = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
else
OPT = -O2 -g
endif

CFLAGS  = -std=gnu11 $(OPT) -Wall -Wextra -Wno-unused-parameter -fopenmp -Isrc -MMD -MP -D_GNU_SOURCE
LDFLAGS = $(OPT) -fopenmp
LDLIBS  = -lmicrohttpd -ljansson -lpcre2-8 -lxxhash -lm -lpthread

# SIMD translation units are compiled for their ISA; callers pick them at run time.
AVX2_FLAGS   = -mavx2 -mfma -mf16c
AVX512_FLAGS = -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16

# Module graph: each module may use only the modules listed for it.
MODULES     = base gguf kernels model jinja tokenizer sampler kv grammar engine server bench
DEPS_base      =
DEPS_gguf      = base
DEPS_jinja     = base
DEPS_kernels   = base gguf
DEPS_model     = kernels gguf base
DEPS_tokenizer = gguf base
DEPS_sampler   = base
DEPS_kv        = model kernels gguf base
DEPS_grammar   = tokenizer gguf base
DEPS_engine    = kv sampler grammar tokenizer model kernels gguf base
DEPS_server    = engine kv sampler grammar tokenizer jinja model kernels gguf base
DEPS_bench     = base
DEPS_cli       = $(MODULES)

SETUP_STAMP = $(BUILD)/.setup-done

srcs_of = $(wildcard src/$(1)/*.c)
objs_of = $(patsubst src/%.c,$(BUILD)/obj/%.o,$(call srcs_of,$(1)))
lib_of  = $(BUILD)/lib/libsw_$(1).a
libs_for = $(foreach m,$(1) $(DEPS_$(1)),$(call lib_of,$(m)))

ALL_OBJS   = $(foreach m,$(MODULES) cli,$(call objs_of,$(m)))
UNIT_SRCS  = $(wildcard tests/unit/*.c)
UNIT_BINS  = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS  = $(wildcard tests/fuzz/*.c)

.PHONY: all test unit fuzz fuzz-bins bench soak serve clean setup
.SECONDARY:
.SECONDEXPANSION:

all: $(BUILD)/swiftlet

setup: $(SETUP_STAMP)
$(SETUP_STAMP): scripts/setup.sh tests/e2e/package.json
	@mkdir -p $(@D)
	@sh scripts/setup.sh
	@touch $@

tests/e2e/package.json:
	@true

$(BUILD)/obj/%.o: src/%.c | $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(if $(findstring _avx512,$*),$(AVX512_FLAGS),$(if $(findstring _avx2,$*),$(AVX2_FLAGS))) -c $< -o $@

define module_lib
$(call lib_of,$(1)): $(call objs_of,$(1))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rcs $$@)
endef
$(foreach m,$(MODULES) cli,$(eval $(call module_lib,$(m))))

$(BUILD)/swiftlet: $(call libs_for,cli)
	$(CC) $(LDFLAGS) -o $@ -Wl,--start-group $^ -Wl,--end-group $(LDLIBS)

# tests/unit/MODULE_name.c -> $(BUILD)/tests/MODULE_name, linked with MODULE's closure.
test_module = $(firstword $(subst _, ,$(1)))
$(BUILD)/tests/%: tests/unit/%.c tests/unit/t.h $$(call libs_for,$$(call test_module,$$*)) | $(SETUP_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< -Wl,--start-group $(call libs_for,$(call test_module,$*)) -Wl,--end-group $(LDLIBS)

unit: $(UNIT_BINS)

# make test: -O2 build (binary + unit tests + e2e), then ASan+UBSan unit tests.
test: $(SETUP_STAMP)
	$(MAKE) --no-print-directory -j2 BUILD=build all unit
	$(MAKE) --no-print-directory -j2 BUILD=build/asan MODE=asan unit
	sh tests/run.sh build build/asan

# libFuzzer targets: tests/fuzz/MODULE_name.c, linked with MODULE's closure built by clang.
FUZZ_BUILD = build/fuzz
FUZZ_SECONDS ?= 60
fuzz: $(SETUP_STAMP)
	$(MAKE) --no-print-directory -j2 BUILD=$(FUZZ_BUILD) MODE=fuzz fuzz-bins
	sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-bins: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
# FUZZ_EXTRA_<target>: modules a target drives besides its own closure.
FUZZ_EXTRA_model_load = tokenizer
fuzz_libs = $(call libs_for,$(call test_module,$(1))) $(foreach m,$(FUZZ_EXTRA_$(1)),$(call libs_for,$(m)))
$(BUILD)/fuzz/%: tests/fuzz/%.c $$(call fuzz_libs,$$*)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< -Wl,--start-group $(call fuzz_libs,$*) -Wl,--end-group $(LDLIBS)

bench: $(BUILD)/swiftlet
	sh bench/run.sh

# Not part of `make test` (which runs a 60-second version, tests/e2e/soak.test.mjs).
SOAK_SECONDS ?= 600
soak: $(BUILD)/swiftlet
	SWIFTLET_BIN=$(CURDIR)/$(BUILD)/swiftlet node tests/e2e/soak.mjs --seconds $(SOAK_SECONDS)

serve: $(BUILD)/swiftlet
	$(BUILD)/swiftlet serve $(if $(MODEL),-m $(MODEL)) $(ARGS)

clean:
	rm -rf build

-include $(ALL_OBJS:.o=.d)

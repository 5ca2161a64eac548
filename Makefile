# gmc: a compiler for .gm generative-model programs.
#   make          build ./gmc
#   make run      set up (apt-get), build, train examples/vae_mlp.gm on Fashion-MNIST
#   make test     set up, build, run the test suite (ends with "N passed, N failed")
#   make bench    benchmarks against PyTorch (not part of make test; BENCH_ARGS="--models vae_mlp")
#   make check-asan  the test suite under AddressSanitizer/UBSan

LLVM_CONFIG ?= $(shell command -v llvm-config-14 || command -v llvm-config)
CC      ?= cc
OPT     ?= -O2
# -fno-math-errno: gmc never reads errno from math functions, and setting it keeps sqrtf
# out of vectorised loops (the optimiser updates)
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -fno-math-errno -Wall -Wextra -Icompiler -Iruntime -Ibuild
LLVM_CFLAGS = $(shell $(LLVM_CONFIG) --cflags 2>/dev/null | sed 's/-std=[^ ]*//')
LLVM_LIBS   = $(shell $(LLVM_CONFIG) --ldflags --libs core orcjit native passes ipo 2>/dev/null) \
              $(shell $(LLVM_CONFIG) --system-libs 2>/dev/null)
LDLIBS  += $(LLVM_LIBS) -lopenblas -lpng -ljpeg -lz -lm -lpthread
PREFIX  ?= /usr/local
BUILD   ?= build

LIB_SRC = $(wildcard compiler/*.c) $(wildcard runtime/*.c)
LIB_SRC := $(filter-out compiler/main.c,$(LIB_SRC))
LIB_OBJ = $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(BUILD)/gm.tab.o $(BUILD)/lex.yy.o
UNIT_SRC = $(wildcard tests/unit/*.c)
UNIT_BIN = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

all: gmc

gmc: $(BUILD)/compiler/main.o $(BUILD)/libgmc.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libgmc.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/gm.tab.c $(BUILD)/gm.tab.h: grammar/gm.y | $(BUILD)
	bison -Wall -d -o $(BUILD)/gm.tab.c $<

$(BUILD)/lex.yy.c: grammar/gm.l $(BUILD)/gm.tab.h | $(BUILD)
	flex -o $@ $<

# generated parser code is not ours: keep its own warnings out of our -Wall -Wextra
$(BUILD)/gm.tab.o $(BUILD)/lex.yy.o: $(BUILD)/%.o: $(BUILD)/%.c
	$(CC) $(CFLAGS) -Wno-unused-function -Wno-sign-compare -Wno-unused-parameter -c -o $@ $<

$(BUILD)/compiler/render_llvm.o: compiler/render_llvm.c compiler/kernel.h | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LLVM_CFLAGS) -c -o $@ $<

# the runtime's own hot loops (optimiser updates, outer products) vectorise only with the
# dynamic cost model: -O2's "very cheap" one refuses loops that need an aliasing check, and
# Adam's scalar loop was a tenth of a CycleGAN step
$(BUILD)/runtime/optim.o $(BUILD)/runtime/exec.o $(BUILD)/runtime/gemm.o: CFLAGS += -ftree-vectorize -fvect-cost-model=dynamic

$(BUILD)/%.o: %.c $(wildcard compiler/*.h runtime/*.h) $(BUILD)/gm.tab.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c tests/check.h tests/tmpfiles.h $(BUILD)/libgmc.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests -o $@ $< $(BUILD)/libgmc.a $(LDLIBS)

# runtime/gemm.c's blocks against OpenBLAS's own threads (a microbenchmark, not in make test)
$(BUILD)/gemm_blocks: bench/gemm_blocks.c $(BUILD)/libgmc.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libgmc.a $(LDLIBS)

# OpenBLAS sgemm on given shapes: bench.py's per-layer reference (bench/sgemm_shapes.c)
$(BUILD)/sgemm_shapes: bench/sgemm_shapes.c | $(BUILD)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

# runtime/conv_gemm.c's implicit convolution products against sgemm (not in make test)
$(BUILD)/conv_products: bench/conv_products.c $(BUILD)/libgmc.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libgmc.a $(LDLIBS)
# the same, the implicit side timed as N free cores would run it (bench/sim_threads.c)
$(BUILD)/conv_products_sim: bench/conv_products.c bench/sim_threads.c $(BUILD)/libgmc.a
	$(CC) $(CFLAGS) -o $@ bench/conv_products.c bench/sim_threads.c $(BUILD)/libgmc.a $(LDLIBS)

# runtime/conv_gemm.c's epilogues against the passes they replace (not in make test)
$(BUILD)/conv_epilogues: bench/conv_epilogues.c $(BUILD)/libgmc.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libgmc.a $(LDLIBS)

$(BUILD):
	mkdir -p $(BUILD)

# --- setup: install only the Debian packages that are missing -------------------------
DEB_PKGS = flex bison llvm-dev libopenblas-dev zlib1g-dev libpng-dev libjpeg-dev dataset-fashion-mnist
TEST_PKGS = python3-torch python3-numpy
deps:
	@sh tools/install-deps.sh $(DEB_PKGS)
deps-test:
	@sh tools/install-deps.sh $(DEB_PKGS) $(TEST_PKGS)

run: deps
	$(MAKE) gmc
	./gmc examples/vae_mlp.gm --run --out out/vae_mlp
	./gmc examples/vae_mlp.gm --sample grid --out out/vae_mlp

test: deps-test
	$(MAKE) gmc $(UNIT_BIN) $(BUILD)/sgemm_shapes
	sh tests/run.sh

check-asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" build-asan/libgmc.a
	$(MAKE) BUILD=build-asan OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" gmc-asan-tests
gmc-asan-tests: $(BUILD)/compiler/main.o $(BUILD)/libgmc.a $(UNIT_BIN)
	$(CC) $(LDFLAGS) -o $(BUILD)/gmc $^ $(LDLIBS) 2>/dev/null || $(CC) $(LDFLAGS) -o $(BUILD)/gmc $(BUILD)/compiler/main.o $(BUILD)/libgmc.a $(LDLIBS)
	GMC=$(BUILD)/gmc GMC_STDLIB=$(CURDIR)/stdlib UNIT_DIR=$(BUILD)/tests ASAN_OPTIONS=detect_leaks=0 sh tests/run.sh

bench: deps-test gmc $(BUILD)/sgemm_shapes
	sh bench/run.sh $(BENCH_ARGS)

install: gmc
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/gmc/stdlib
	install -m 755 gmc $(DESTDIR)$(PREFIX)/bin/gmc
	install -m 644 stdlib/*.gm $(DESTDIR)$(PREFIX)/share/gmc/stdlib/

clean:
	rm -rf build build-asan gmc

.PHONY: all deps deps-test run test check-asan gmc-asan-tests bench install clean

# mapcore — the one entry point. `make demo` and `make test` are the front door.
SHELL := /bin/bash
# Install locations, with cargo-c's names and defaults; DESTDIR is prepended
# to each (staged installs for packaging).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
STRIP ?= strip
CARGO ?= cargo
GO ?= go
VERSION := 1.0.0
SOMAJOR := 1

LIB_DIR := target/release
# A user-style staging install (lib with soname links, header, pkg-config file)
# that the C examples and tests build against.
STAGE := $(CURDIR)/build/stage
export PKG_CONFIG_PATH := $(STAGE)/lib/pkgconfig:$(PKG_CONFIG_PATH)

.PHONY: all lib stage header header-check demo test rust-test c-test go-test abi-check \
        valgrind sanitizers install uninstall clean bench bench-smoke stress fuzz lint \
        oom-test oom-report loom loom-mutants fuzz-build fuzz-smoke fuzz-rust

all: stage

# Builds the libraries and records the native libraries a static link of
# libmapcore.a needs, as rustc reports them for this toolchain and target
# (cargo replays the note when nothing is rebuilt); mapcore-static.pc and
# mapcore.pc's Libs.private are made from that file. The committed
# rust-core/native-static-libs.txt (bench, the Go binding's #cgo LDFLAGS)
# gets a warning when it differs.
NATIVE_LIBS := $(LIB_DIR)/native-static-libs.txt
lib:
	@mkdir -p $(LIB_DIR)
	set -o pipefail; $(CARGO) rustc --release -p mapcore --lib -- --print native-static-libs 2>&1 \
	    | tee $(LIB_DIR)/mapcore-build.log | { grep -v -e '^note: ' -e '^$$' || true; }
	@sed -n 's/^note: native-static-libs: //p' $(LIB_DIR)/mapcore-build.log > $(NATIVE_LIBS)
	@test -s $(NATIVE_LIBS) || { echo "make lib: rustc printed no native-static-libs" >&2; exit 1; }
	@cmp -s <(tr -s ' ' '\n' < $(NATIVE_LIBS)) <(tr -s ' ' '\n' < rust-core/native-static-libs.txt) || \
	  echo "warning: rustc's native-static-libs ($$(cat $(NATIVE_LIBS))) differ from rust-core/native-static-libs.txt" >&2

# SPLIT_DEBUG=1 keeps the .so's debug info next to it (valgrind's reports in
# c-examples name source lines) while the libraries themselves are the
# stripped ones a user installs.
stage: lib
	@$(MAKE) --no-print-directory install PREFIX=$(STAGE) LIBDIR=$(STAGE)/lib \
	    INCLUDEDIR=$(STAGE)/include DESTDIR= SPLIT_DEBUG=1 >/dev/null

header:
	$(CARGO) run -q -p mapcore --example gen_header

# Regenerates the header with the pinned cbindgen and fails on any difference.
header-check:
	$(CARGO) test -q -p mapcore --test header_sync

# Installs what `make lib` built, never building (so `sudo make install` runs
# no cargo as root). Installed copies are release-sized; the build tree keeps
# its debug info (profiling): the .so loses its debug info and local symbols,
# the .a its debug info and the LLVM bitcode (.llvmbc/.llvmcmd) rustc embeds
# in every object, which no C linker uses. SPLIT_DEBUG=1 also installs the
# .so's debug info as libmapcore.so.$(VERSION).debug beside it, found by
# debuggers and valgrind through the .gnu_debuglink the .so then carries.
# mapcore.pc links the shared library (`--static` cannot pick the archive:
# -lmapcore finds the .so first); mapcore-static.pc links libmapcore.a.
# Libs.private: the native libraries a static link needs, from `make lib`.
LIB_SO := libmapcore.so.$(VERSION)
PC_SED = -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
         -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
         -e "s|@STATIC_LIBS@|$$(cat $(NATIVE_LIBS))|g"
install:
	@test -f $(LIB_DIR)/libmapcore.so -a -f $(LIB_DIR)/libmapcore.a -a -f $(NATIVE_LIBS) || \
	  { echo "make install: $(LIB_DIR)/libmapcore.{so,a} not built: run 'make lib' first (install never builds)" >&2; exit 1; }
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 $(LIB_DIR)/libmapcore.so $(DESTDIR)$(LIBDIR)/$(LIB_SO)
ifeq ($(SPLIT_DEBUG),1)
	rm -f $(DESTDIR)$(LIBDIR)/$(LIB_SO).debug
	objcopy --only-keep-debug $(DESTDIR)$(LIBDIR)/$(LIB_SO) $(DESTDIR)$(LIBDIR)/$(LIB_SO).debug
	chmod 0644 $(DESTDIR)$(LIBDIR)/$(LIB_SO).debug
	$(STRIP) --strip-unneeded $(DESTDIR)$(LIBDIR)/$(LIB_SO)
	cd $(DESTDIR)$(LIBDIR) && objcopy --add-gnu-debuglink=$(LIB_SO).debug $(LIB_SO)
else
	$(STRIP) --strip-unneeded $(DESTDIR)$(LIBDIR)/$(LIB_SO)
endif
	ln -sf $(LIB_SO) $(DESTDIR)$(LIBDIR)/libmapcore.so.$(SOMAJOR)
	ln -sf libmapcore.so.$(SOMAJOR) $(DESTDIR)$(LIBDIR)/libmapcore.so
	install -m 0644 $(LIB_DIR)/libmapcore.a $(DESTDIR)$(LIBDIR)/libmapcore.a
	$(STRIP) --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd $(DESTDIR)$(LIBDIR)/libmapcore.a
	install -m 0644 include/mapcore.h $(DESTDIR)$(INCLUDEDIR)/mapcore.h
	sed $(PC_SED) rust-core/mapcore.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/mapcore.pc
	sed $(PC_SED) rust-core/mapcore-static.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/mapcore-static.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libmapcore.so* $(DESTDIR)$(LIBDIR)/libmapcore.a \
	      $(DESTDIR)$(INCLUDEDIR)/mapcore.h $(DESTDIR)$(LIBDIR)/pkgconfig/mapcore.pc \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/mapcore-static.pc

demo: all
	@echo "== C demos: safe iteration under modification =="
	$(MAKE) --no-print-directory -C c-examples demo
	@echo "== Go demo =="
	@# The go tool does not hash files named in #cgo LDFLAGS: stamp the build
	@# with the library's checksum so a rebuilt libmapcore.a is always relinked.
	cd go-binding && $(GO) run -ldflags "-X main.libID=$$(cksum < ../$(LIB_DIR)/libmapcore.a | cut -d' ' -f1)" ./cmd/demo

test: all rust-test loom header-check abi-check c-test oom-test valgrind sanitizers go-test \
      bench-smoke fuzz-smoke
	@echo "== all tests passed =="

rust-test:
	$(CARGO) test -q -p mapcore

abi-check: stage
	$(CARGO) test -q -p abi-check

c-test: stage
	$(MAKE) --no-print-directory -C c-examples test

# Out of memory through the C API (c-examples/tests/oom/README.md): an
# injector fails each allocation of each call in turn; and a run under an
# address-space limit. oom-report prints the whole table without failing.
oom-test: stage
	$(MAKE) --no-print-directory -C c-examples oom-test

oom-report: stage
	$(MAKE) --no-print-directory -C c-examples oom-report

valgrind: stage
	$(MAKE) --no-print-directory -C c-examples valgrind

sanitizers: stage
	$(MAKE) --no-print-directory -C c-examples sanitizers

go-test: lib
	@# -X stamps the test binaries with the library's checksum, so they are
	@# relinked whenever libmapcore.a changes (see the demo target).
	cd go-binding && $(GO) vet ./... && $(GO) test -race -count=1 \
	    -ldflags "-X main.libID=$$(cksum < ../$(LIB_DIR)/libmapcore.a | cut -d' ' -f1)" ./...
	./go-binding/scripts/outside-module-test.sh

bench:
	$(MAKE) --no-print-directory -C bench all

bench-smoke:
	BENCH_QUICK=1 BENCH_SMOKE=1 $(MAKE) --no-print-directory -C bench smoke

stress: stage
	MAPCORE_STRESS_SECS=$${MAPCORE_STRESS_SECS:-60} $(CARGO) test --release -p mapcore --test stress -- --ignored --nocapture
	$(MAKE) --no-print-directory -C c-examples stress

# Model-checks the shard lock's and the registry's protocols with loom
# (rust-core/loom builds their source files over loom's atomics), in a
# target directory of its own since --cfg loom changes every crate's flags.
# LOOM_MAX_PREEMPTIONS bounds the preemptions per execution explored.
LOOM_MAX_PREEMPTIONS ?= 3
loom:
	RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=$(LOOM_MAX_PREEMPTIONS) \
	    $(CARGO) test -q --release -p mapcore-loom

# Breaks the protocols one way at a time and checks the models catch each.
loom-mutants:
	LOOM_MAX_PREEMPTIONS=$(LOOM_MAX_PREEMPTIONS) ./rust-core/loom/mutants.sh

fuzz: fuzz-rust
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --release -p mapcore --test model

# Coverage-guided fuzzing of the Go binding (testing.F), GO_FUZZTIME per
# target (go test -fuzz takes one target per run). Their seeds run in every
# go-test; a failing input lands in go-binding/testdata/fuzz/: commit it.
.PHONY: fuzz-go
GO_FUZZTIME ?= 5m
GO_FUZZ_TARGETS := FuzzOps FuzzTokenUnmarshalText
fuzz: fuzz-go
fuzz-go: lib
	cd go-binding && for t in $(GO_FUZZ_TARGETS); do \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(GO_FUZZTIME) \
	        -ldflags "-X main.libID=$$(cksum < ../$(LIB_DIR)/libmapcore.a | cut -d' ' -f1)" . || exit 1; \
	done

# Coverage-guided fuzzing with libFuzzer on stable Rust (rust-core/fuzz/README.md):
# the flags cargo-fuzz would pass for `--sanitizer none`, plus debug
# assertions and overflow checks in the library under test. --target keeps
# them off build scripts.
FUZZ_TARGETS := token_decode token_raw batch_entry api_model
FUZZ_TRIPLE := $(shell rustc -vV | sed -n 's/^host: //p')
FUZZ_BIN := target/fuzz/$(FUZZ_TRIPLE)/release
FUZZ_RUSTFLAGS := -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing \
    -Cdebug-assertions -Coverflow-checks -Ccodegen-units=1

fuzz-build:
	RUSTFLAGS="$(FUZZ_RUSTFLAGS)" $(CARGO) build -q --release --locked \
	    --manifest-path rust-core/fuzz/Cargo.toml --target $(FUZZ_TRIPLE) --target-dir target/fuzz --bins

# A few seconds per target: the committed corpus, then FUZZ_SMOKE_RUNS inputs.
fuzz-smoke: fuzz-build
	rust-core/fuzz/run.sh smoke $(FUZZ_BIN) $(FUZZ_TARGETS)

# The long run: FUZZ_SECS seconds (default 300) or FUZZ_RUNS executions per target.
fuzz-rust: fuzz-build
	nice rust-core/fuzz/run.sh long $(FUZZ_BIN) $(FUZZ_TARGETS)

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --manifest-path rust-core/fuzz/Cargo.toml --target-dir target/fuzz --all-targets -- -D warnings
	$(CARGO) fmt --manifest-path rust-core/fuzz/Cargo.toml -- --check

clean:
	$(CARGO) clean
	rm -rf build
	$(MAKE) -C c-examples clean || true

# The ABI test that hands the library uninitialised output memory, under Miri
# (nightly; rustup adds the component) with recursive validation, so a
# reference the library made over such memory is reported as undefined
# behaviour. Not part of `make test`: Miri's first build takes minutes.
.PHONY: miri
miri:
	rustup toolchain install nightly --profile minimal --component miri
	MIRIFLAGS="-Zmiri-disable-isolation -Zmiri-recursive-validation" \
	    $(CARGO) +nightly miri test -p mapcore --test engine outputs_may_be_uninitialised

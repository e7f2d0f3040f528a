# mapcore — the one entry point. `make demo` and `make test` are the front door.
SHELL := /bin/bash
PREFIX ?= /usr/local
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
        fuzz-build fuzz-smoke fuzz-rust

all: stage

lib:
	$(CARGO) build --release -p mapcore

stage: lib
	@$(MAKE) --no-print-directory install PREFIX=$(STAGE) >/dev/null

header:
	$(CARGO) run -q -p mapcore --example gen_header

# Regenerates the header with the pinned cbindgen and fails on any difference.
header-check:
	$(CARGO) test -q -p mapcore --test header_sync

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(LIB_DIR)/libmapcore.so $(DESTDIR)$(PREFIX)/lib/libmapcore.so.$(VERSION)
	ln -sf libmapcore.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmapcore.so.$(SOMAJOR)
	ln -sf libmapcore.so.$(SOMAJOR) $(DESTDIR)$(PREFIX)/lib/libmapcore.so
	install -m 0644 $(LIB_DIR)/libmapcore.a $(DESTDIR)$(PREFIX)/lib/libmapcore.a
	install -m 0644 include/mapcore.h $(DESTDIR)$(PREFIX)/include/mapcore.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    -e "s|@STATIC_LIBS@|$$(cat rust-core/native-static-libs.txt)|g" \
	    rust-core/mapcore.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mapcore.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/lib/libmapcore.so* $(DESTDIR)$(PREFIX)/lib/libmapcore.a \
	      $(DESTDIR)$(PREFIX)/include/mapcore.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/mapcore.pc

demo: all
	@echo "== C demos: safe iteration under modification =="
	$(MAKE) --no-print-directory -C c-examples demo
	@echo "== Go demo =="
	@# The go tool does not hash files named in #cgo LDFLAGS: stamp the build
	@# with the library's checksum so a rebuilt libmapcore.a is always relinked.
	cd go-binding && $(GO) run -ldflags "-X main.libID=$$(cksum < ../$(LIB_DIR)/libmapcore.a | cut -d' ' -f1)" ./cmd/demo

test: all rust-test header-check abi-check c-test valgrind sanitizers go-test bench-smoke fuzz-smoke
	@echo "== all tests passed =="

rust-test:
	$(CARGO) test -q -p mapcore

abi-check: stage
	$(CARGO) test -q -p abi-check

c-test: stage
	$(MAKE) --no-print-directory -C c-examples test

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

fuzz: fuzz-rust
	PROPTEST_CASES=$${PROPTEST_CASES:-20000} $(CARGO) test --release -p mapcore --test model

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

# make run    create .venv, install netcap, capture the sample pcap (audit records in
#             out/sample, a few TCP records shown), then serve its metrics on
#             http://127.0.0.1:7777/metrics until Ctrl-C
# make test   ruff, mypy and pytest (what CI runs: .ci/run calls it)
# make bench  time `net export`, `net capture`, tshark and Suricata side by side on a
#             1,000,000-packet capture built from the corpus (bench/run_bench.py; BENCH_ARGS
#             to add, e.g. BENCH_ARGS="-r 5 --pcap FILE")
# make bench-bulk  the same on bulk-heavy traffic (large HTTP and TLS downloads, an SSH copy)
#             recorded in network namespaces into bench/out/bulk.pcap if missing (root;
#             bench/record_bulk.sh)
# make record  re-record the project's own test captures (root; tests/data/record/record.sh)
# make bench-live  the live capture rate with zero kernel drops on a veth pair (root;
#             bench/live_bench.py; LIVE_ARGS to add, e.g. LIVE_ARGS=--mix: the bench
#             capture's real mix to net export and Suricata at each rate)
# make fuzz-files  mutation-fuzz `net capture`, `net export` and `net dump` with files made
#             from the corpus and the project's captures (20,000 cases; FUZZ_ARGS to change,
#             e.g. FUZZ_ARGS="--cases 2000"); reproducers in bench/out/fuzz
# make fuzz   run the compiled parsers' fuzz targets (fuzz/fuzz_*.py) under ASan + UBSan with
#             the core built instrumented in .venv-fuzz (fuzz/run.py, docs/fuzzing.md):
#             FUZZ_SECONDS per target (default 60), or FUZZ_RUNS inputs each; FUZZ_TARGETS
#             names some (e.g. "buf tls"); FUZZ_JOBS run at once. Reproducers, corpus and the
#             totals over all runs in fuzz/out
#
# Each target first installs the Debian packages it needs that are missing (tools/setup:
# as root, or through sudo; else it prints the command to run as root and stops): Python's
# venv for all of them, for `fuzz` clang and its sanitizer runtimes, for `test` those and
# prometheus, iproute2, tcpdump, ping, setpriv, sysctl, openssl, curl; for bench and
# bench-bulk tshark, Suricata (from Debian's backports), iproute2, tcpdump, curl, openssl
# and OpenSSH.

# The Python that makes .venv: the first of python3.13, python3.12, python3.11 and python3 that
# is 3.11 or newer (`make PYTHON=python3.12 ...` chooses another). Expanded only by the recipes
# that use it, so `make clean` never looks.
PYTHON ?= $(shell tools/setup python 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# What tools/setup installs: for the goals given that need more than Python's venv, else `run`.
SETUP_FOR := $(or $(filter test fuzz bench bench-bulk bench-live,$(MAKECMDGOALS)),run)

.PHONY: run test bench bench-bulk bench-live fuzz fuzz-files clean compile setup record
# Plain `make`: the venv with netcap installed, as before (not the setup check alone).
.DEFAULT_GOAL := $(STAMP)

# Phony, so it checks on every make (a few `command -v`s); installs only what is missing.
setup:
	PYTHON='$(PYTHON)' tools/setup $(SETUP_FOR)

# The compiled core is built by meson-python; an editable install builds it in build/ and
# rebuilds changed modules when netcap is imported, with the build tools of the venv
# (hence --no-build-isolation, and those tools installed first). The venv's bin first on the
# PATH: the editable loader runs the ninja found now at every `import netcap`, and another on
# the PATH (a pyenv shim: a shell script, 0.3 s a start) would cost every `net` run that.
$(STAMP): pyproject.toml meson.build | setup
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q \
		'meson-python>=0.17' 'meson>=1.2' ninja 'Cython>=3.1'
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pip install --disable-pip-version-check -q \
		--no-build-isolation -e '.[test]'
	touch $@

# Bytecode, as a wheel install would have it: where PYTHONDONTWRITEBYTECODE is set, an
# editable install otherwise compiles every module at each start (~50 ms of a run).
compile: $(STAMP)
	$(BIN)/python -m compileall -q src

run: compile
	$(BIN)/net capture -read tests/data/sample.pcap -out out/sample
	$(BIN)/net dump -read out/sample/TCP.ncap.gz | head -5
	$(BIN)/net export -read tests/data/sample.pcap -address 127.0.0.1:7777

test: $(STAMP)
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/mypy
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/cython-lint --max-line-length 100 src
	$(BIN)/python -m pytest

BENCH_ARGS ?=

bench: compile
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)

bench-bulk: compile
	$(BIN)/python bench/run_bench.py --capture bulk $(BENCH_ARGS)

LIVE_ARGS ?=

bench-live: compile
	$(BIN)/python bench/live_bench.py $(LIVE_ARGS)

record:
	tests/data/record/record.sh

FUZZ_ARGS ?= --cases 20000

fuzz-files: compile
	nice -n 10 $(BIN)/python bench/mutfuzz.py $(FUZZ_ARGS)

# With FUZZ_RUNS alone, no time limit: the runs bound it.
FUZZ_RUNS ?= 0
FUZZ_SECONDS ?= $(if $(filter-out 0,$(FUZZ_RUNS)),0,60)
FUZZ_JOBS ?= 1
FUZZ_TARGETS ?=

# Its own venv (.venv-fuzz, built by run.py when missing or stale), not .venv: the sanitized
# build is not the one to run or test the product with.
fuzz: setup
	nice -n 10 $(PYTHON) fuzz/run.py --seconds $(FUZZ_SECONDS) --runs $(FUZZ_RUNS) \
		-j $(FUZZ_JOBS) $(FUZZ_TARGETS)

clean:
	rm -rf out bench/out

# make run    create .venv, install netcap, capture the sample pcap (audit records in
#             out/sample, a few TCP records shown), then serve its metrics on
#             http://127.0.0.1:7777/metrics until Ctrl-C
# make test   ruff, mypy and pytest (what CI runs: .ci/run)
# make bench  time `net capture` against tshark on a 1,000,000-packet capture (needs tshark)
# make bench-live  the live capture rate with zero kernel drops on a veth pair (root,
#             needs tcpreplay: apt-get install tcpreplay)
# make fuzz-files  mutation-fuzz `net capture`, `net export` and `net dump` with files made
#             from the corpus and the project's captures (20,000 cases; FUZZ_ARGS to change,
#             e.g. FUZZ_ARGS="--cases 2000"); reproducers in bench/out/fuzz

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-live fuzz-files clean compile

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test]'
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
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: compile
	$(BIN)/python bench/run_bench.py

bench-live: compile
	$(BIN)/python bench/live_bench.py

FUZZ_ARGS ?= --cases 20000

fuzz-files: compile
	nice -n 10 $(BIN)/python bench/mutfuzz.py $(FUZZ_ARGS)

clean:
	rm -rf out bench/out

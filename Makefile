# make run    create .venv, install netcap, capture the sample pcap (audit records in
#             out/sample, a few TCP records shown), then serve its metrics on
#             http://127.0.0.1:7777/metrics until Ctrl-C
# make test   ruff, mypy and pytest (what CI runs: .ci/run)
# make bench  time `net capture` against tshark on a 1,000,000-packet capture (needs tshark)
# make record  re-record the project's own test captures (root; tests/data/record/record.sh)
# make bench-live  the live capture rate with zero kernel drops on a veth pair (root,
#             needs tcpreplay: apt-get install tcpreplay)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench bench-live clean compile record

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

record:
	tests/data/record/record.sh

clean:
	rm -rf out bench/out

# chorus: `make run` starts a local chorus cluster you can chat on; `make test`
# builds and runs every test (unit, simulation, fuzz corpus, integration,
# cluster on real Corosync in network namespaces, irctest, and the whole
# suite again under AddressSanitizer+UBSan).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PORT       ?= 6667
REPLICAS   ?= 5
DIR        ?= run
PYTEST     := /usr/bin/python3 -m pytest

.PHONY: all deps build asan run test unit integration test-asan fuzz fuzz-ci clean chaos irctest install deb

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCHORUS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Installs chorusd (sbin), chorus and chorusctl (bin), their man pages, the
# systemd unit, the system user (sysusers.d), an example configuration and
# the docs under $(PREFIX), in $(DESTDIR) if set (docs/OPERATIONS.md).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The Debian package of the same files (CPack's DEB generator; dependencies
# by dpkg-shlibdeps), installed under /usr: build-deb/chorus_<version>_<arch>.deb.
deb: deps
	@cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-deb -j $(JOBS) --target chorusd chorus chorusctl
	cd build-deb && cpack -G DEB

# A local cluster: a private Corosync and $(REPLICAS) replicas on ports
# $(PORT).., data in $(DIR)/, supervised until Ctrl-C (needs root).
run: build
	@echo "chorus: $(REPLICAS) replicas on 127.0.0.1 ports $(PORT)-$$(($(PORT)+$(REPLICAS)-1)), data in $(DIR)/"
	@echo "        connect with any IRC client, e.g. irssi -c 127.0.0.1 -p $(PORT); Ctrl-C stops the cluster"
	$(BUILD)/chorusctl up -n $(REPLICAS) --dir $(DIR) --port $(PORT)

unit: build
	ctest --test-dir $(BUILD) --output-on-failure

# Two pytest runs: each suite has its own conftest.py.
integration: build
	CHORUSD=$(abspath $(BUILD))/chorusd $(PYTEST) -q tests/integration
	CHORUSD=$(abspath $(BUILD))/chorusd $(PYTEST) -q tests/cluster

test-asan: asan
	ctest --test-dir $(ASAN_BUILD) --output-on-failure
	CHORUSD=$(abspath $(ASAN_BUILD))/chorusd CHORUS_SANITIZED=1 $(PYTEST) -q tests/integration
	CHORUSD=$(abspath $(ASAN_BUILD))/chorusd CHORUS_SANITIZED=1 $(PYTEST) -q tests/cluster

test: unit integration irctest test-asan

# The nemesis on real Corosync at length, not part of `make test` (which plays
# one schedule in the cluster suite): CHAOS_SCHEDULES seeded schedules of
# partitions, partial and one-way cuts, kill -9 and wiped restarts under
# writers on every replica, about a minute each; a line per schedule and a
# summary. CHORUS_NEMESIS_SEED=<seed> replays from that seed (needs root).
CHAOS_SCHEDULES ?= 50
chaos: build
	CHORUSD=$(abspath $(BUILD))/chorusd CHORUS_NEMESIS_SCHEDULES=$(CHAOS_SCHEDULES) \
		$(PYTEST) -q -s -p no:cacheprovider tests/cluster/test_nemesis.py

# irctest, the IRC server conformance suite (a pinned copy in $(SHARED)/irctest,
# run from a copy in $(BUILD)), with chorus's controller (tests/irctest), on
# the selection its CHORUS.md gives, less the tests listed with their reason
# in tests/irctest/known-failures.txt (about 30 s; docs/PROTOCOL.md has the
# figures). IRCTEST_ARGS adds pytest arguments, e.g. IRCTEST_ARGS="-k Who";
# IRCTEST_KNOWN= runs the known failures too.
SHARED ?= ../shared
IRCTEST_SELECTION := not implementation-specific and not deprecated and not strict and not services and not Ergo
IRCTEST_KNOWN ?= $(shell sed 's/\#.*//' tests/irctest/known-failures.txt)
irctest: build
	@scripts/deps.sh
	@rm -rf $(BUILD)/irctest && cp -r $(SHARED)/irctest $(BUILD)/irctest
	cd $(BUILD)/irctest && CHORUSD=$(abspath $(BUILD))/chorusd PYTHONPATH=$(abspath tests/irctest) \
		$(PYTEST) -p no:cacheprovider -q --controller chorus_controller -n 2 \
		-m '$(IRCTEST_SELECTION)' $(addprefix --deselect=,$(IRCTEST_KNOWN)) $(IRCTEST_ARGS)

fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCHORUS_FUZZ=ON \
		-DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@echo "run e.g.: mkdir -p /tmp/corpus && build-fuzz/fuzz_irc -max_total_time=60 /tmp/corpus fuzz/corpus/irc"

# Every fuzz target for FUZZ_SECONDS (default 200) each, from its kept
# corpus; what finds new code is merged into fuzz/corpus/ (not in make test).
fuzz-ci: fuzz
	scripts/fuzz-ci.sh build-fuzz
	@echo "(the first folder gets the new inputs: keep it out of the repository)"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz

# The benchmark suite, not part of `make test`: chorus against inspircd and
# ngircd from Debian on this machine (bench/run.py, under 10 minutes); writes
# docs/PERFORMANCE.md and docs/perf/. BENCH_ARGS passes options to run.py,
# e.g. BENCH_ARGS=--quick, or BENCH_ARGS="--chorus-cluster 5".
.PHONY: bench
bench: build
	@bench/peers/install.sh
	/usr/bin/python3 bench/run.py --build $(BUILD) $(BENCH_ARGS)

"""The cluster tests need root and Corosync; elsewhere they are skipped with
a loud message (never silently)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from netcluster import CHORUSD, ROOT, Cluster, usable  # noqa: E402,F401

# What tests/integration/client_helpers.py takes from a conftest.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def pytest_collection_modifyitems(config, items):
    why = usable()
    if why:
        sys.stderr.write("\n*** CLUSTER TESTS SKIPPED: %s ***\n" % why)
        for item in items:
            item.add_marker(pytest.mark.skip(reason="cluster tests " + why))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item (rep_setup, rep_call) for
    the fixtures' teardown."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def down(request, c):
    """Stops cluster c; if the test failed, first prints the end of every
    replica's log, so that a failure in CI can be read from its report."""
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for n in c.nodes:
            tail = n.log().splitlines()[-60:]
            sys.stderr.write("---- replica %d, last %d log lines\n%s\n" % (n.i, len(tail), "\n".join(tail)))
    c.down()


@pytest.fixture
def cluster(tmp_path, request):
    c = Cluster(tmp_path / "cluster").up()
    yield c
    down(request, c)


@pytest.fixture
def open_cluster(tmp_path, request):
    """Replicas with --identity open: a name is a person (tests of
    replication that use one name from several connections)."""
    c = Cluster(tmp_path / "cluster", extra_args=["--identity", "open"]).up()
    yield c
    down(request, c)


@pytest.fixture
def majority_cluster(tmp_path, request):
    c = Cluster(tmp_path / "cluster", mode="majority").up()
    yield c
    down(request, c)


@pytest.fixture
def small_disk_cluster(tmp_path, request):
    """Replica 2's data lives on a 3 MB tmpfs (tests fill it)."""
    c = Cluster(tmp_path / "cluster", small_disk=(2, "3m")).up()
    yield c
    down(request, c)

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


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "cluster").up()
    yield c
    c.down()


@pytest.fixture
def majority_cluster(tmp_path):
    c = Cluster(tmp_path / "cluster", mode="majority").up()
    yield c
    c.down()


@pytest.fixture
def small_disk_cluster(tmp_path):
    """Replica 2's data lives on a 3 MB tmpfs (tests fill it)."""
    c = Cluster(tmp_path / "cluster", small_disk=(2, "3m")).up()
    yield c
    c.down()

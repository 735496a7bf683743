"""Hypothesis profiles ("fast" by default, "deep" with HYPOTHESIS_PROFILE=deep), the MariaDB
fixtures, and ci_tiers.py's plugin: a skip under CI=true fails, a count per tier ends the run."""

import os

from hypothesis import HealthCheck, settings

from ci_tiers import pytest_configure as pytest_configure

pytest_plugins = [
    "shared_beds",  # each shared OpenStack testbed's tests together, then it stops
    "early_testbed",  # the loopback testbed comes up while the tests before it run
]

settings.register_profile("fast", max_examples=60, deadline=None)
settings.register_profile(
    "deep", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast"))


# -- a real MariaDB server for the tests marked ``mariadb`` (started here, once a session) --

import socket  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from edgescope.testbed.mariadb import MariaDB, mariadb_installed  # noqa: E402


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """Debian's mariadb-server, started by the tests in a folder of their own."""
    if not mariadb_installed():  # under CI=true this skip fails (ci_tiers.py)
        pytest.skip("mariadb-server is not installed (make system-deps installs it)")
    server = MariaDB(Path(tmp_path_factory.mktemp("mariadb")), port=_free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mariadb_database(mariadb_server: MariaDB) -> Iterator[Callable[[], str]]:
    """``url = mariadb_database()``: a fresh, empty database (dropped afterwards)."""
    made: list[str] = []

    def make() -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        made.append(name)
        return mariadb_server.create_database(name, "edgescope", "edgescope-test")

    yield make
    for name in made:
        mariadb_server.drop_database(name)

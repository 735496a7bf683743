"""MariaDB for tests and the testbed: Debian's ``mariadb-server``, started by us with its own
data folder (there is no systemd), like :mod:`rabbit` does for RabbitMQ.

It stands for a site's MariaDB/Galera, the database that several edgescope proxies of one
site share (``[replicas] database = "mysql+pymysql://..."``). Neighbours: ``process.py``
(PIDs); the tests' ``mariadb`` fixture and ``bench/`` start one.

    >>> server = MariaDB(Path("state/mariadb"), port=23306)
    >>> server.start()
    >>> server.create_database("paris", "edgescope", "secret")
    'mysql+pymysql://edgescope:secret@127.0.0.1:23306/paris'
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from edgescope.testbed.layout import TestbedError
from edgescope.testbed.process import port_in_use, running_pid, start_process, stop_process

SERVER = "mariadbd"
INSTALL_DB = "mariadb-install-db"
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def mariadb_installed() -> bool:
    """True if Debian's mariadb-server package (the server and its install tool) is here."""
    return shutil.which(SERVER, path=_PATH) is not None and shutil.which(INSTALL_DB) is not None


_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])


@dataclass(frozen=True)
class MariaDB:
    """A MariaDB server whose whole state lives under ``root``, on ``host:port``."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 23306

    @property
    def socket(self) -> Path:
        return self.root / "mysqld.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "server.pid"

    @property
    def log(self) -> Path:
        return self.root / "mariadb.log"

    def running(self) -> bool:
        return running_pid(self.pidfile) is not None

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the data folder once, start the server, wait until it answers."""
        if not mariadb_installed():
            raise TestbedError(
                "mariadb-server is not installed: run `make system-deps` as root "
                "(apt-get install mariadb-server)"
            )
        if self.running():
            return
        if port_in_use(self.host, self.port):
            raise TestbedError(f"MariaDB: port {self.port} on {self.host} is taken")
        data = self.root / "data"
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        if not (data / "mysql").is_dir():
            data.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [INSTALL_DB, "--no-defaults", f"--datadir={data}", "--skip-test-db",
                 "--auth-root-authentication-method=socket", *as_root],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise TestbedError(f"mariadb-install-db failed: {done.stderr.strip()[-400:]}")
        start_process(
            [
                shutil.which(SERVER, path=_PATH) or SERVER,
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                f"--bind-address={self.host}",
                f"--pid-file={self.root / 'mariadbd.pid'}",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--max-connections=200",
                "--character-set-server=utf8mb4",
                *as_root,
            ],
            log=self.log,
            pidfile=self.pidfile,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sql("SELECT 1")
                return
            except TestbedError as exc:
                if not self.running():
                    tail = self.log.read_text(errors="replace")[-600:] if self.log.exists() else ""
                    raise TestbedError(f"MariaDB exited at start: {tail}") from exc
                if time.monotonic() > deadline:
                    raise TestbedError(f"MariaDB did not answer within {timeout:.0f} s") from exc
                time.sleep(0.2)

    def stop(self) -> bool:
        return stop_process(self.pidfile, timeout=30.0)

    def sql(self, statement: str) -> str:
        """Run ``statement`` as root over the server's socket; its output, tab-separated."""
        try:
            done = subprocess.run(
                ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-N", "-B",
                 "-e", statement],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TestbedError(f"mariadb client: {exc}") from exc
        if done.returncode != 0:
            raise TestbedError(f"mariadb: {done.stderr.strip()[-300:]}")
        return done.stdout

    def create_database(self, name: str, user: str, password: str) -> str:
        """Create (idempotently) database ``name`` and ``user`` with every right on it; its URL."""
        if not (_NAME.match(name) and _NAME.match(user)) or "'" in password:
            raise TestbedError(f"MariaDB: bad database or user name {name!r}/{user!r}")
        self.sql(
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4; "
            f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'; "
            f"ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'; "
            f"GRANT ALL ON `{name}`.* TO '{user}'@'%';"
        )
        return self.url(name, user, password)

    def drop_database(self, name: str) -> None:
        if not _NAME.match(name):
            raise TestbedError(f"MariaDB: bad database name {name!r}")
        self.sql(f"DROP DATABASE IF EXISTS `{name}`")

    def url(self, name: str, user: str, password: str) -> str:
        return f"mysql+pymysql://{user}:{quote(password, safe='')}@{self.host}:{self.port}/{name}"

    def purge(self) -> None:
        """Delete the server's state (only when stopped)."""
        if self.running():
            raise TestbedError("refusing to purge a running MariaDB")
        shutil.rmtree(self.root, ignore_errors=True)

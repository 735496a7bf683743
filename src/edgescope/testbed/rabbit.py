"""RabbitMQ for the testbed: Debian's ``rabbitmq-server``, started by us (there is no systemd).

One :class:`RabbitBroker` per state folder serves every site, one vhost and one user per
site. Under ``--wan`` a site can get its own broker instead: give it its own folder, its own
``host`` and an ``exec_prefix`` such as ``("ip", "netns", "exec", "es-paris")``.
Neighbours: ``process.py`` (PIDs), ``deployment.py`` (decides how many brokers).

    >>> broker = RabbitBroker(Path("state/rabbit"), host="127.0.0.1", port=25672)
    >>> broker.start(); broker.ensure_vhost("paris", "paris", "secret")
    >>> broker.url("paris", "paris", "secret")
    'rabbit://paris:secret@127.0.0.1:25672/paris'
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from edgescope.testbed.layout import TestbedError
from edgescope.testbed.process import port_in_use, running_pid, start_process, stop_process

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def rabbit_installed() -> bool:
    """True if Debian's rabbitmq-server package is installed."""
    return (RABBIT_BIN / "rabbitmq-server").exists()


@dataclass(frozen=True)
class RabbitBroker:
    """A RabbitMQ node whose whole state lives under ``root``."""

    root: Path
    host: str = "127.0.0.1"
    port: int = 25672
    exec_prefix: tuple[str, ...] = field(default=())

    @property
    def nodename(self) -> str:
        # Distinct per port, so two state folders never fight over one Erlang node name.
        return f"edgescope{self.port}@localhost"

    @property
    def pidfile(self) -> Path:
        return self.root / "server.pid"

    @property
    def log(self) -> Path:
        return self.root / "log" / "rabbitmq.log"

    def _env(self) -> dict[str, str]:
        homes = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*"))
        env = {
            "HOME": str(self.root / "home"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq"),
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_PID_FILE": str(self.root / "rabbit.pid"),
            "RABBITMQ_DIST_PORT": str(self.port + 1),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_CRASH_DUMP": str(self.root / "log" / "erl_crash.dump"),
        }
        if homes:
            env["RABBITMQ_HOME"] = homes[-1]
        return env

    def _write_config(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.host}:{self.port}\n"
            "loopback_users = none\n"
            "log.file.level = warning\n"
        )
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "enabled_plugins").write_text("[].\n")

    def running(self) -> bool:
        return running_pid(self.pidfile) is not None

    def start(self, timeout: float = 120.0) -> None:
        """Start the node if it is not running, and wait until it accepts commands."""
        if not rabbit_installed():
            raise TestbedError(
                "rabbitmq-server is not installed: run `make system-deps` as root "
                "(apt-get install rabbitmq-server)"
            )
        if not self.running():
            taken = [p for p in (self.port, self.port + 1) if port_in_use(self.host, p)]
            if taken and not self.exec_prefix:
                raise TestbedError(
                    f"RabbitMQ: port {taken[0]} on {self.host} is taken by a process this testbed "
                    "did not start (a system RabbitMQ uses 25672 for clustering; stop it, or "
                    "use another --port-base)"
                )
            self._write_config()
            start_process(
                [*self.exec_prefix, str(RABBIT_BIN / "rabbitmq-server")],
                log=self.log,
                pidfile=self.pidfile,
                env=self._env(),
            )
        self.ctl(
            "wait",
            "--timeout",
            str(int(timeout)),
            str(self.root / "rabbit.pid"),
            timeout=timeout + 10,
        )

    def stop(self) -> bool:
        """Stop the node with ``rabbitmqctl stop`` (waits for its OS process), then its script."""
        if not self.running():
            return stop_process(self.pidfile)
        with contextlib.suppress(TestbedError):
            self.ctl("stop", str(self.root / "rabbit.pid"), timeout=60.0)
        return stop_process(self.pidfile, timeout=15.0) or True

    def ctl(self, *args: str, timeout: float = 180.0) -> str:
        """Run ``rabbitmqctl`` against this node; raise with its output on failure. Its Erlang
        VM starts for each command: at a load average of 35 on two cores a command took over
        60 s (2026-12-07), hence the generous hang guard."""
        argv = [*self.exec_prefix, str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args]
        try:
            done = subprocess.run(
                argv,
                env={**os.environ, **self._env()},
                cwd=self.root,  # rabbitmqctl may drop an erl_crash.dump in its cwd
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise TestbedError(f"rabbitmqctl {args[0]} timed out after {timeout:.0f} s") from exc
        if done.returncode != 0:
            raise TestbedError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
        return done.stdout

    def ensure_vhost(self, vhost: str, user: str, password: str) -> None:
        """Create (idempotently) ``vhost`` and ``user`` with full rights on it."""
        if vhost not in self.ctl("list_vhosts", "--quiet", "--no-table-headers").split():
            self.ctl("add_vhost", vhost)
        users = [
            line.split()[0]
            for line in self.ctl("list_users", "--quiet", "--no-table-headers").splitlines()
            if line
        ]
        if user in users:
            self.ctl("change_password", user, password)
        else:
            self.ctl("add_user", user, password)
        self.ctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")

    def url(self, vhost: str, user: str, password: str) -> str:
        """The oslo.messaging ``transport_url`` for a site."""
        return f"rabbit://{user}:{quote(password, safe='')}@{self.host}:{self.port}/{vhost}"

    def purge(self) -> None:
        """Delete the node's state (only when stopped)."""
        if self.running():
            raise TestbedError("refusing to purge a running RabbitMQ")
        shutil.rmtree(self.root, ignore_errors=True)

"""The emulated edge WAN as one object: bring it up, cut and heal links, tear it down.

Puts together ``netns`` (namespaces and bridge), ``partition`` (iptables cuts), and either
``netem`` (kernel delays) or the userspace ``delayer`` process. Its state (topology,
backend, delayer PID, cuts) is saved in ``state_dir/state.json``, so another process, e.g.
``edgescope testbed partition``, can attach to it and ``down`` finds everything it started.

    wan = Wan.up(load_topology(), Path("/run/edgescope/wan"))
    subprocess.run([*wan.exec_prefix("Paris"), "ping", "-c1", wan.site_address("Corte")])
    wan.partition("Paris", "Corte"); wan.heal()
    Wan.attach(Path("/run/edgescope/wan")).down()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgescope.errors import ConfigError
from edgescope.testbed.wan import netem, netns, partition
from edgescope.testbed.wan._commands import WanError, netns_cmd
from edgescope.testbed.wan.netns import WanNames
from edgescope.testbed.wan.partition import Cut
from edgescope.testbed.wan.topology import Topology, parse_topology

Backend = Literal["auto", "nfqueue", "netem"]
DEFAULT_STATE_DIR = Path(os.environ.get("EDGESCOPE_WAN_STATE", "/run/edgescope/wan"))
# With another EDGESCOPE_WAN_STATE, lets a second WAN (and its testbed) run beside the first.
DEFAULT_PREFIX = os.environ.get("EDGESCOPE_WAN_PREFIX", "es")
log = logging.getLogger(__name__)

_DELAYER_MODULE = "edgescope.testbed.wan.delayer"
_READY_TIMEOUT = 60.0
"""How long the delayer may take to say "ready". It was 10 s: on the shared machine at load
20+ (2026-12-07, several WANs and CI), a new Python process plus its ``iptables -w`` calls
(which wait for the xtables lock other WANs hold) took longer, and the starter's closed
pipe killed the delayer as it said "ready" (BrokenPipeError in delayer.log)."""
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{0,15}$")


@dataclass(frozen=True)
class WanStatus:
    prefix: str
    backend: str
    sites: list[dict[str, Any]]
    """name, namespace, address, and whether the namespace exists (present)."""
    links: list[dict[str, Any]]
    cuts: list[list[str]]
    delayer_pid: int | None
    delayer_alive: bool


@dataclass
class Wan:
    """A running WAN. Build it with ``Wan.up`` or ``Wan.attach``, never directly."""

    topology: Topology
    state_dir: Path
    names: WanNames
    backend: Literal["nfqueue", "netem"]
    cuts: frozenset[Cut] = frozenset()
    delayer_pid: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        topology: Topology,
        state_dir: Path,
        *,
        prefix: str = DEFAULT_PREFIX,
        backend: Backend = "auto",
    ) -> Wan:
        """Create namespaces, bridge, cut chain and delays; replaces a WAN left in state_dir."""
        if not _PREFIX.match(prefix):
            raise ConfigError(f"prefix {prefix!r} must be 1-16 lowercase letters, digits or '-'")
        if backend not in ("auto", "nfqueue", "netem"):
            raise ConfigError(f"unknown backend {backend!r}; valid backends: auto, nfqueue, netem")
        _require_root()
        state_dir = state_dir.resolve()
        state_dir.mkdir(parents=True, exist_ok=True)
        with _locked(state_dir):
            if (state_dir / "state.json").exists():
                cls._load(state_dir)._teardown()
            names = WanNames(prefix)
            netns.create(topology, names)
            wan = cls(topology, state_dir, names, "nfqueue")
            try:
                netns.set_sysctl(names.wan, "net.bridge.bridge-nf-call-iptables", "1")
                partition.install_chain(names.wan)
                use_netem = backend == "netem" or (
                    backend == "auto" and netem.netem_available(names.wan)
                )
                if use_netem:
                    wan.backend = "netem"
                    netem.apply(topology, names)
                else:
                    wan._start_delayer()
                wan._save()
            except BaseException:
                wan._teardown()
                raise
        return wan

    @classmethod
    def attach(cls, state_dir: Path = DEFAULT_STATE_DIR) -> Wan:
        """The WAN whose state is in ``state_dir`` (started by another process)."""
        return cls._load(state_dir)

    def down(self) -> None:
        """Stop the delayer, delete every namespace (and so every rule), forget the state."""
        with _locked(self.state_dir):
            self._teardown()

    # -- sites joining and leaving -------------------------------------------------------------

    def add_sites(self, topology: Topology) -> list[str]:
        """Bring up the sites of ``topology`` this WAN lacks, with their links (``topology``
        must hold every site already up); returns the names added."""
        with _locked(self.state_dir):
            self._refresh()
            missing = [n for n in self.topology.names if n not in topology.names]
            if missing:
                raise ConfigError(f"the new topology lacks sites that are up: {missing}")
            new = [n for n in topology.names if n not in self.topology.names]
            if not new:
                return []
            netns.add_sites(topology, self.names, new)
            self._reshape(topology)
            return new

    def remove_site(self, site: str) -> None:
        """Take ``site``'s namespace off the WAN (its cuts go too)."""
        with _locked(self.state_dir):
            self._refresh()
            name = self.topology.site(site).name
            netns.remove_sites(self.names, [name])
            kept = [n for n in self.topology.names if n != name]
            self.cuts = frozenset(c for c in self.cuts if name not in c)
            partition.apply_cuts(self.names.wan, partition.cut_rules(self.cuts, self.topology))
            self._reshape(parse_topology(self.topology.to_dict(), sites=kept))

    def _reshape(self, topology: Topology) -> None:
        """Delays for ``topology`` (call under the lock)."""
        old = self.topology
        self.topology = topology
        if self.backend == "nfqueue":
            self._write_delayer_config()
            self._signal_delayer(signal.SIGHUP)
        else:
            netem.reset(old, self.names)
            netem.apply(topology, self.names)
        self._save()

    # -- partitions and links ------------------------------------------------------------------

    def partition(self, a: str, b: str) -> None:
        """Cut the a–b pair (both directions)."""
        self._change_cuts(lambda cuts: partition.add_cut(cuts, a, b, self.topology))

    def isolate(self, site: str) -> None:
        """Cut ``site`` from every other site."""
        self._change_cuts(lambda cuts: partition.isolate(cuts, site, self.topology))

    def heal(self, a: str | None = None, b: str | None = None) -> None:
        """Restore every link, the links of ``a``, or the a–b link."""
        self._change_cuts(lambda cuts: partition.heal(cuts, self.topology, a, b))

    def set_link(
        self,
        a: str,
        b: str,
        *,
        rtt_ms: float | None = None,
        jitter_ms: float | None = None,
        loss: float | None = None,
    ) -> None:
        """Change the RTT, jitter or loss of the a–b pair while the WAN runs."""
        with _locked(self.state_dir):
            self._refresh()
            self.topology = self.topology.with_link(
                a, b, rtt_ms=rtt_ms, jitter_ms=jitter_ms, loss=loss
            )
            if self.backend == "netem":
                netem.update_link(self.topology, self.names, a, b)
            else:
                self._write_delayer_config()
                self._signal_delayer(signal.SIGHUP)
            self._save()

    # -- queries ---------------------------------------------------------------------------

    def site_address(self, site: str) -> str:
        return self.topology.site(site).address

    def namespace(self, site: str) -> str:
        return self.names.site(self.topology.site(site).name)

    def exec_prefix(self, site: str) -> list[str]:
        """Prefix a command with this to run it inside ``site``'s namespace."""
        return netns_cmd(self.namespace(site))

    def status(self) -> WanStatus:
        return WanStatus(
            prefix=self.names.prefix,
            backend=self.backend,
            sites=[
                {
                    "name": s.name,
                    "namespace": self.names.site(s.name),
                    "address": s.address,
                    "present": netns.exists(self.names.site(s.name)),
                }
                for s in self.topology.sites
            ],
            links=[
                {
                    "sites": [lk.a, lk.b],
                    "rtt_ms": lk.rtt_ms,
                    "jitter_ms": lk.jitter_ms,
                    "loss": lk.loss,
                    "cut": frozenset((lk.a, lk.b)) in self.cuts,
                }
                for lk in self.topology.links
            ],
            cuts=sorted(sorted(c) for c in self.cuts),
            delayer_pid=self.delayer_pid,
            delayer_alive=self.delayer_pid is not None and _is_delayer(self.delayer_pid),
        )

    # -- internals -------------------------------------------------------------------------

    def _change_cuts(self, change: Callable[[frozenset[Cut]], frozenset[Cut]]) -> None:
        with _locked(self.state_dir):
            self._refresh()
            cuts = change(self.cuts)
            partition.apply_cuts(self.names.wan, partition.cut_rules(cuts, self.topology))
            self.cuts = cuts
            if self.backend == "nfqueue":
                self._write_delayer_config()
                self._signal_delayer(signal.SIGHUP)
            self._save()

    def _start_delayer(self) -> None:
        """Start the delayer in the wan namespace; return once its queue and rule are in place."""
        config = self._write_delayer_config()
        log_path = self.state_dir / "delayer.log"
        cmd = netns_cmd(
            self.names.wan,
            sys.executable,
            "-m",
            _DELAYER_MODULE,
            "--daemon",
            "--config",
            str(config),
        )
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
            )
        assert proc.stdout is not None
        with proc.stdout:
            ready, _, _ = select.select([proc.stdout], [], [], _READY_TIMEOUT)
            line = proc.stdout.readline().decode(errors="replace").split() if ready else []
        proc.wait(timeout=_READY_TIMEOUT)  # the detaching parent, gone right after its fork
        if len(line) != 2 or line[0] != "ready" or not line[1].isdigit():
            tail = log_path.read_text(errors="replace").strip().splitlines()
            raise WanError(f"the WAN delayer did not start: {' / '.join(tail[-3:]) or 'no output'}")
        self.delayer_pid = int(line[1])

    def _write_delayer_config(self) -> Path:
        pairs = [
            {
                "src": self.site_address(src),
                "dst": self.site_address(dst),
                "delay_ms": lk.one_way_ms,
                "jitter_ms": lk.jitter_ms,
                "loss": lk.loss,
            }
            for lk in self.topology.links
            for src, dst in ((lk.a, lk.b), (lk.b, lk.a))
        ]
        cuts = [[self.site_address(n) for n in sorted(c)] for c in self.cuts]
        path = self.state_dir / "delayer.json"
        _write_atomically(path, json.dumps({"pairs": pairs, "partitions": cuts}, indent=1))
        return path

    def _signal_delayer(self, signum: int) -> None:
        """Signal the delayer (call under the lock); one found dead is started again, since
        the WAN's delays must not silently vanish, and the reason it gave is logged."""
        if self.delayer_pid is None or not _is_delayer(self.delayer_pid):
            tail: list[str] = []
            with contextlib.suppress(OSError):
                tail = (self.state_dir / "delayer.log").read_text(errors="replace").splitlines()
            log.warning(
                "the WAN delayer (pid %s) was gone; starting it again. Its log ended: %s",
                self.delayer_pid,
                " / ".join(tail[-5:]) or "(empty)",
            )
            self._start_delayer()  # it reads the config just written
            return
        os.kill(self.delayer_pid, signum)

    def _stop_delayer(self) -> None:
        """SIGTERM (it removes its rule and releases held packets), SIGKILL after 5 s."""
        pid = self.delayer_pid
        if pid is not None and _is_delayer(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while _running(pid) and time.monotonic() < deadline:
                time.sleep(0.005)
            if _is_delayer(pid):
                os.kill(pid, signal.SIGKILL)
            while _running(pid) and time.monotonic() < deadline + 5:
                time.sleep(0.005)
        self.delayer_pid = None

    def _teardown(self) -> None:
        self._stop_delayer()
        netns.destroy(self.names, self.topology.names)
        for name in ("state.json", "delayer.json"):
            (self.state_dir / name).unlink(missing_ok=True)

    def _save(self) -> None:
        state = {
            "prefix": self.names.prefix,
            "backend": self.backend,
            "topology": self.topology.to_dict(),
            "cuts": sorted(sorted(c) for c in self.cuts),
            "delayer_pid": self.delayer_pid,
        }
        _write_atomically(self.state_dir / "state.json", json.dumps(state, indent=1))

    def _refresh(self) -> None:
        """Pick up changes made by other processes sharing the state_dir (call under the lock)."""
        current = self._load(self.state_dir)
        self.topology, self.cuts, self.delayer_pid = (
            current.topology,
            current.cuts,
            current.delayer_pid,
        )

    @classmethod
    def _load(cls, state_dir: Path) -> Wan:
        path = state_dir / "state.json"
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise WanError(f"no WAN is up (no {path}); start one with `edgescope wan up`") from None
        except (OSError, ValueError) as exc:
            raise WanError(f"cannot read the WAN state {path}: {exc}") from exc
        site_names = [s["name"] for s in state["topology"]["sites"]]
        topology = parse_topology(state["topology"], sites=site_names)
        return cls(
            topology,
            state_dir,
            WanNames(state["prefix"]),
            state["backend"],
            frozenset(frozenset(c) for c in state["cuts"]),
            state["delayer_pid"],
        )


def _is_delayer(pid: int) -> bool:
    """True when ``pid`` is a running edgescope delayer (never signal a reused PID)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return _running(pid) and _DELAYER_MODULE.encode() in cmdline


def _running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for its parent has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise WanError("the emulated WAN needs root (network namespaces and iptables)")


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """Serialise changes between processes (the API, the CLI) sharing one state_dir."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)

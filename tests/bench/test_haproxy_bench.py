"""bench/haproxy.py's configurations: what Debian's HAProxy runs in the benchmark (no load)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from bench.haproxy import haproxy_config, proxy_config, rules_per_frontend

PORTS = {"main": 21090, "image": 21081, "front1": 21011, "front2": 21012, "plain": 21013}


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
@pytest.mark.parametrize("proxies", [1, 2])
def test_the_benchmarks_haproxy_configs_are_valid(tmp_path: Path, proxies: int) -> None:
    config = proxy_config(PORTS, backend=21000, proxies=proxies)
    text = haproxy_config(config, PORTS["plain"] if proxies == 1 else None)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    done = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    servers = [line for line in text.splitlines() if line.strip().startswith("server ctl")]
    assert len(servers) == proxies  # one edgescope backend: the site's proxies
    assert ("frontend image_plain" in text) == (proxies == 1)
    assert rules_per_frontend(config) > 4

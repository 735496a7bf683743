"""``edgescope deploy haproxy|systemd`` on the documented example site: the Kolla-Ansible and
OpenStack-Ansible snippets, put where those tools put them, pass ``haproxy -c``; the unit
passes ``systemd-analyze verify``; docs/deploy.md shows exactly what the commands print."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgescope.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "paris.toml"
runner = CliRunner()
KOLLA = {"identity": ("keystone_internal", 5000), "compute": ("nova_api", 8774),
         "image": ("glance_api", 9292)}  # fmt: skip
OSA = {"identity": ("keystone_service", 5000), "compute": ("nova_api_os_compute", 8774),
       "image": ("glance_api", 9292)}  # fmt: skip


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example config next to a fresh key (keys are never committed)."""
    shutil.copy(EXAMPLE, tmp_path / "paris.toml")
    done = runner.invoke(app, ["proxy", "keygen", "--out", str(tmp_path / "paris.key")])
    assert done.exit_code == 0, done.output
    return tmp_path / "paris.toml"


def deploy(*args: str) -> str:
    done = runner.invoke(app, ["deploy", *args])
    assert done.exit_code == 0, done.output
    return done.stdout


def yaml_list(text: str, name: str) -> list[object]:
    """The items of ``name:`` in the printed YAML (each one a JSON value, valid YAML)."""
    items = []
    for line in text.split(f"{name}:\n", 1)[1].splitlines():
        if not line.startswith("  - "):
            break
        items.append(json.loads(line[4:]))
    return items


KOLLA_OWN = "a 'http-request' rule placed after a 'use_backend' rule will still be processed"
"""The one warning, from Kolla's own XFP line after the extras (harmless: HAProxy runs every
http-request rule before choosing a backend)."""


def haproxy_check(config: str, tmp: Path, allowed: str = "") -> None:
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy is not installed")
    path = tmp / "haproxy.cfg"
    head = ["global", "    maxconn 100", "    log stdout local0", "defaults", "    log global",
            "    mode http", "    timeout connect 5s", "    timeout client 30s",
            "    timeout server 30s", ""]  # fmt: skip
    path.write_text("\n".join(head) + "\n" + config)
    done = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr + config
    warnings = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "WARNING" in line and not (allowed and allowed in line)
    ]
    assert not warnings, warnings


@pytest.mark.parametrize("on_down", ["closed", "open"])
def test_kolla_snippets_pass_haproxy_check(example: Path, tmp_path: Path, on_down: str) -> None:
    out = deploy("haproxy", "--config", str(example), "--on-edgescope-down", on_down)
    extra = yaml_list(out, "haproxy_frontend_http_extra")
    services_d = out.split("services.d/edgescope.cfg: edgescope's backends\n", 1)[1]
    # the frontends as Kolla-Ansible's haproxy_single_service_split template renders them
    rendered = []
    for name, port in KOLLA.values():
        rendered += [f"frontend {name}_front", "    mode http",
                     "    http-request del-header X-Forwarded-Proto",
                     *(f"    {line}" for line in extra),
                     "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
                     f"    bind 127.0.0.1:{port}", f"    default_backend {name}_back", "",
                     f"backend {name}_back", "    mode http",
                     f"    server ctl1 10.0.0.11:{port} check inter 2s", ""]  # fmt: skip
    haproxy_check("\n".join(rendered) + "\n" + services_d, tmp_path, allowed=KOLLA_OWN)


def test_openstack_ansible_snippets_pass_haproxy_check(example: Path, tmp_path: Path) -> None:
    out = deploy("haproxy", "--config", str(example), "--flavor", "openstack-ansible")
    raw = yaml_list(out, "haproxy_frontend_extra_raw")
    extra_services = yaml_list(out, "haproxy_extra_services")
    rendered = []
    for name, port in OSA.values():  # as OpenStack-Ansible's haproxy_server service.j2 does
        rendered += [f"frontend {name}-front-1", f"    bind 127.0.0.1:{port}",
                     "    option httplog", "    option forwardfor except 127.0.0.0/8",
                     "    mode http", f"    default_backend {name}-back",
                     *(f"    {line}" for line in raw), "",
                     f"backend {name}-back", "    mode http",
                     f"    server ctl1 10.0.0.11:{port} check port {port}", ""]  # fmt: skip
    for service in extra_services:
        assert isinstance(service, dict)
        name = service["haproxy_service_name"]
        if service.get("haproxy_frontend_only"):
            rendered += [f"frontend {name}-front-1",
                         f"    bind {service['haproxy_bind'][0]}:{service['haproxy_port']}",
                         "    mode http", *(f"    {r}" for r in service["haproxy_frontend_raw"]),
                         ""]  # fmt: skip
            continue
        rendered += [f"backend {name}-back", "    mode http",
                     f"    balance {service['haproxy_balance_alg']}",
                     *(f"    option {o}" for o in service["haproxy_backend_options"]),
                     *(f"    http-check {o}" for o in service["haproxy_backend_httpcheck_options"]),
                     *(f"    server {n['name']} {n['ip_addr']}:{service['haproxy_backend_port']} "
                       f"check port {service['haproxy_check_port']} inter 2s rise 2 fall 2"
                       for n in service["haproxy_backend_nodes"]), ""]  # fmt: skip
    haproxy_check("\n".join(rendered) + "\n", tmp_path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('backend = "http://10.0.0.250:18774"', 'backend = "http://10.0.0.250:8774"'), "a loop"),
        (("port = 20174", 'prefix = "/compute"'), "needs a listener of its own"),
        (('flavor = "kolla"', 'flavor = "kubernetes"'), "not one of kolla"),
        (('proxies = ["ctl1=10.0.0.11"', 'proxies = ["ctl1"'), "expected 'name=address'"),
    ],
)
def test_mistakes_in_the_site_config_are_clear_errors(
    example: Path, edit: tuple[str, str], message: str
) -> None:
    text = example.read_text()
    assert edit[0] in text
    example.write_text(text.replace(edit[0], edit[1]))
    done = runner.invoke(app, ["deploy", "haproxy", "--config", str(example)])
    assert done.exit_code == 2 and message in done.output and "Traceback" not in done.output


def test_the_systemd_unit_verifies(example: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    executable = str(Path(sys.executable).parent / "edgescope")
    unit = deploy("systemd", "--config", str(example), "--executable", executable, "--user", "root")
    assert "Restart=on-failure" in unit and "ProtectSystem=strict" in unit
    path = tmp_path / "edgescope-proxy.service"
    path.write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_docs_deploy_shows_what_the_commands_print(example: Path) -> None:
    """Each block of docs/deploy.md under ``<!-- command: ... -->`` is that command's output."""
    doc = (ROOT / "docs" / "deploy.md").read_text()
    blocks = re.findall(r"<!-- command: (.+?) -->\n```[a-z]*\n(.*?)```", doc, re.S)
    assert len(blocks) >= 3
    for command, shown in blocks:
        args = command.replace("/etc/edgescope/paris.toml", str(example)).split()
        assert args[:2] == ["edgescope", "deploy"], command
        printed = deploy(*args[2:]).replace(str(example.parent), "/etc/edgescope")
        assert printed.strip() == shown.strip(), command

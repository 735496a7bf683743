"""A systemd unit for one edgescope proxy: ``edgescope deploy systemd --config paris.toml``.

Pure: the text of ``/etc/systemd/system/edgescope-proxy@.service``-style unit for a config
file. The proxy logs JSON lines on stdout (the journal keeps them), serves ``/metrics`` and
``/edgescope/health`` on its main listener, and stops cleanly on SIGTERM.

    text = unit(Path("/etc/edgescope/paris.toml"), "/usr/local/bin/edgescope")
"""

from __future__ import annotations

from pathlib import Path

from edgescope.proxy.config import ProxyConfig


def unit(
    config_path: Path,
    executable: str,
    *,
    user: str = "edgescope",
    state_dir: Path | None = None,
    config: ProxyConfig | None = None,
) -> str:
    """The unit; ``state_dir`` (an embedded registry) is the one folder it may write."""
    site = config.site if config is not None else config_path.stem
    writable = f"ReadWritePaths={state_dir}\n" if state_dir is not None else ""
    return f"""[Unit]
Description=edgescope proxy of site {site} (scope routing in front of its OpenStack APIs)
Documentation=file:///usr/share/doc/edgescope/deploy.md
After=network-online.target
Wants=network-online.target
# A restart storm (a broken config) stops after 10 tries in 5 minutes: systemctl status says why.
StartLimitIntervalSec=300
StartLimitBurst=10

[Service]
Type=simple
User={user}
Group={user}
ExecStart={executable} proxy run --config {config_path} --log-level INFO
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s
KillSignal=SIGTERM
LimitNOFILE=65536
# Hardening: the proxy needs its config, its keys, the network, and nothing else.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
UMask=0077
{writable}
[Install]
WantedBy=multi-user.target
"""

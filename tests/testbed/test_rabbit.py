"""The testbed's own RabbitMQ node: started without systemd, vhosts per site, stopped by PID."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edgescope.testbed.layout import TestbedError
from edgescope.testbed.rabbit import RabbitBroker, rabbit_installed

needs_rabbit = pytest.mark.skipif(
    not rabbit_installed(), reason="rabbitmq-server is not installed (make system-deps as root)"
)


def _free_port_pair() -> int:
    """A port p below the ephemeral range with p and p+1 free."""
    for port in range(14672, 15600, 7):
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    pytest.skip("no free port pair")


def test_url_quotes_the_password() -> None:
    broker = RabbitBroker(Path("/x"), port=25672)
    assert broker.url("paris", "paris", "a/b@c") == "rabbit://paris:a%2Fb%40c@127.0.0.1:25672/paris"


@needs_rabbit
def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    port = _free_port_pair()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port + 1))
        squatter.listen()
        with pytest.raises(TestbedError, match=f"port {port + 1} on 127.0.0.1 is taken"):
            RabbitBroker(tmp_path, port=port).start()
    assert not (tmp_path / "server.pid").exists()


@needs_rabbit
@pytest.mark.testbed
def test_start_vhost_stop(tmp_path: Path) -> None:
    broker = RabbitBroker(tmp_path / "rabbit", port=_free_port_pair())
    broker.start()
    try:
        broker.ensure_vhost("paris", "paris", "pw1")
        broker.ensure_vhost("paris", "paris", "pw2")  # idempotent, password updated
        assert "paris" in broker.ctl("list_vhosts").split()
    finally:
        assert broker.stop()
    assert not broker.running()

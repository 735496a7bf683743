"""``--os-scope-mode`` / ``OS_SCOPE_MODE``: the real ``openstack`` CLI marks eventual writes.

The header ``X-Scope-Mode: eventual`` is what the proxy's replicated-write fan-out reads
(``edgescope.replicas.fanout.MODE_HEADER``); strict, the default, sends no header.
"""

from __future__ import annotations

import argparse
import asyncio

import pytest
from osc_recorder import Recorder, paris_options, run_openstack

from edgescope.openstack import osc_plugin
from edgescope.openstack.session import MODE_HEADER
from edgescope.proxy.carriers import MODE_HEADER as PROXY_MODE_HEADER


def _cli(recorder: Recorder, *options: str) -> list[str]:
    return [*paris_options(recorder.url), *options, "container", "list"]


def test_option_parses_from_command_line_and_environment(monkeypatch) -> None:
    assert MODE_HEADER == PROXY_MODE_HEADER
    monkeypatch.delenv("OS_SCOPE_MODE", raising=False)
    parser = osc_plugin.build_option_parser(argparse.ArgumentParser())
    assert parser.parse_args([]).scope_mode == "strict"
    assert parser.parse_args(["--os-scope-mode", "Eventual"]).scope_mode == "eventual"
    monkeypatch.setenv("OS_SCOPE_MODE", "eventual")
    parser = osc_plugin.build_option_parser(argparse.ArgumentParser())
    assert parser.parse_args([]).scope_mode == "eventual"
    assert parser.parse_args(["--os-scope-mode", "strict"]).scope_mode == "strict"
    assert parser.parse_args(["--os-scope-mode", "PARTIAL"]).scope_mode == "partial"
    with pytest.raises(SystemExit):
        parser.parse_args(["--os-scope-mode", "lazy"])


async def test_eventual_is_sent_on_every_request_strict_sends_nothing(recorder: Recorder) -> None:
    scope = ["--os-scope", "{keystone: Paris & Corte}"]
    runs = [
        (["--os-scope-mode", "eventual", *scope], {}, "eventual"),
        ([], {"OS_SCOPE_MODE": "eventual"}, "eventual"),  # env, and no scope at all
        (["--os-scope-mode", "Partial", *scope], {}, "partial"),
        (["--os-scope-mode", "strict", *scope], {"OS_SCOPE_MODE": "eventual"}, None),
        (scope, {}, None),
    ]
    for options, env, expected in runs:
        recorder.requests.clear()
        result = await run_openstack(*_cli(recorder, *options), env=env)
        assert recorder.requests, result.stderr
        assert {r.headers.get(MODE_HEADER) for r in recorder.requests} == {expected}, options


async def test_bad_mode_is_a_clean_usage_error_before_any_request(recorder: Recorder) -> None:
    results = await asyncio.gather(
        run_openstack(*_cli(recorder, "--os-scope-mode", "lazy")),
        run_openstack(*_cli(recorder), env={"OS_SCOPE_MODE": "sometimes"}),
    )
    for result in results:
        assert result.code != 0
        assert "strict, eventual or partial" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert recorder.requests == []

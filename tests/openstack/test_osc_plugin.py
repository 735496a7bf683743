"""The real ``openstack`` CLI with the edgescope plugin, against a generic request recorder."""

from __future__ import annotations

import asyncio
import base64
from importlib.metadata import entry_points
from pathlib import Path

from osc_recorder import Recorder, paris_options, run_openstack, token_options

from edgescope.openstack import osc_plugin


def test_plugin_is_registered_through_the_osc_extension_entry_point() -> None:
    names = {ep.name: ep.value for ep in entry_points(group="openstack.cli.extension")}
    assert names["edgescope"] == "edgescope.openstack.osc_plugin"
    hooks = {ep.value for ep in entry_points(group="openstack.cli.server_list")}
    assert "edgescope.openstack.hooks:SiteColumnHook" in hooks


def test_option_is_parsed_from_the_command_line_and_the_environment(monkeypatch) -> None:
    import argparse

    monkeypatch.setenv("OS_SCOPE", "{glance: Corte}")
    parser = osc_plugin.build_option_parser(argparse.ArgumentParser())
    assert parser.parse_args([]).scope == osc_plugin.ScopeOption("{glance: Corte}")
    assert parser.parse_args(["--os-scope", "{nova: Paris}"]).scope.text == "{nova: Paris}"
    # not a str: openstacksdk would str.format() it and choke on the braces
    assert not hasattr(parser.parse_args([]).scope, "format")
    assert parser.parse_args(["--os-scope-sites", "A,B"]).scope_sites == "A,B"


async def test_bad_scopes_fail_before_any_request(recorder: Recorder, clouds_yaml: Path) -> None:
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds_yaml)}
    cases = [  # (global options, what stderr must show)
        (["--os-scope", "{nova: Paris &}"], "^"),  # syntax: caret under the error
        (["--os-scope", "{nova: Paris, neutron: Corte}"], "same site"),  # collaboration rule
        ([], "Lyon"),  # OS_SCOPE from the environment, naming a site clouds.yaml does not know
    ]
    results = await asyncio.gather(
        *(
            run_openstack(
                "--os-cloud",
                "Paris",
                *options,
                "server",
                "list",
                env={**env, **({} if options else {"OS_SCOPE": "{glance: Lyon}"})},
            )
            for options, _ in cases
        )
    )
    for (options, expected), result in zip(cases, results, strict=True):
        assert result.code != 0, options
        assert expected in result.stderr, (options, result.stderr)
        assert "invalid --os-scope" in result.stderr
        assert "Traceback" not in result.stderr, result.stderr
    assert recorder.requests == []


async def test_every_request_carries_the_scope_and_the_token_piggyback(recorder: Recorder) -> None:
    # admin_token auth: the CLI sends the given token to the given endpoint, no Keystone needed.
    # `server list` first asks for a version document (unauthenticated); `container list` uses
    # OSC's own object-store client, which sends an authenticated request straight away.
    for command in (["server", "list"], ["container", "list"]):
        result = await run_openstack(
            *paris_options(recorder.url),
            "--os-scope",
            "{nova: Paris & Corte}",
            *command,
        )
        assert result.code != 0  # the recorder is no OpenStack service; only carriers matter
    assert recorder.requests, result.stderr
    expected = "{compute: Paris & Corte, identity: Paris}"
    for request in recorder.requests:
        assert request.headers["X-Scope"] == expected
    with_token = [r for r in recorder.requests if "X-Auth-Token" in r.headers]
    assert with_token, [r.path for r in recorder.requests]
    for request in with_token:
        token, _, encoded = request.headers["X-Auth-Token"].partition("~scope~")
        assert token == "tok123"
        assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() == expected


async def test_no_scope_means_no_carrier(recorder: Recorder) -> None:
    await run_openstack(*token_options(recorder.url), "container", "list")
    assert len(recorder.requests) == 1
    for request in recorder.requests:
        assert "X-Scope" not in request.headers
        assert request.headers["X-Auth-Token"] == "tok123"

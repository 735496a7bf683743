"""``edgescope replicas list|show|pending`` on a registry file and against a running proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from edgescope.cli.replicas import app
from edgescope.replicas.model import Hlc, Member, MemberState, PendingOp, ReplicaSet
from edgescope.replicas.registry import Registry

runner = CliRunner()
SitesFactory = Any


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"EDGESCOPE_REPLICAS_DIR": ""})
    return result.exit_code, result.stdout, result.stderr


def fill(directory: Path | str) -> None:
    registry = Registry(directory)
    registry.put_set(
        ReplicaSet(
            "aa0000000001",
            "identity",
            "/v3/users",
            (Member("Paris", "aa0000000001"), Member("Corte", None, MemberState.PENDING)),
        )
    )
    registry.enqueue(
        PendingOp(
            "k:Corte",
            "aa0000000001",
            "Corte",
            "identity",
            "POST",
            "/v3/users",
            b"{}",
            {},
            Hlc(1, 0, "P"),
        )
    )
    registry.close()


def test_list_show_pending_from_the_registry_file(tmp_path: Path) -> None:
    fill(tmp_path / "Paris")
    code, out, _ = invoke("list", "--state-dir", str(tmp_path), "--site", "Paris", "--json")
    assert code == 0 and [s["handle"] for s in json.loads(out)] == ["aa0000000001"]
    code, out, _ = invoke("list", "--state-dir", str(tmp_path / "Paris"))
    assert code == 0 and "Corte(pending)" in out
    code, out, _ = invoke("show", "aa0000000001", "--state-dir", str(tmp_path / "Paris"), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["members"][1]["state"] == "pending"
    assert [p["target"] for p in shown["pending"]] == ["Corte"]
    code, out, _ = invoke("pending", "--state-dir", str(tmp_path / "Paris"))
    assert code == 0 and "Corte" in out and "POST" in out and "/v3/users" in out


def test_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    fill(tmp_path / "Paris")
    code, _, err = invoke("list", "--state-dir", str(tmp_path))
    assert code == 2 and "sites found there: Paris (use --site)" in err
    code, _, err = invoke("show", "nope", "--state-dir", str(tmp_path / "Paris"))
    assert code == 2 and "no replica set 'nope' at Paris" in err
    code, _, err = invoke("list")
    assert code == 2 and "--state-dir" in err
    code, _, err = invoke("list", "--url", "http://127.0.0.1:9")
    assert code == 1 and "cannot read" in err and "Traceback" not in err


async def test_url_asks_a_running_proxy(replica_sites: SitesFactory) -> None:
    paris, _corte = await replica_sites("Paris", "Corte")
    _, _, body = await paris.call(
        "POST", "/things", "{image: Paris & Corte}", json={"thing": {"name": "alice"}}
    )
    code, _, err = await asyncio.to_thread(invoke, "list", "--url", paris.proxy.url)
    assert code == 1 and "needs an operator's X-Auth-Token" in err  # sets name ids: operators
    code, _, err = await asyncio.to_thread(
        invoke, "list", "--url", paris.proxy.url, "--token", "a-member-token"
    )
    assert code == 1 and "needs role admin at Paris" in err
    code, out, _ = await asyncio.to_thread(
        invoke, "list", "--url", paris.proxy.url, "--json", "--token", "an-admin-token"
    )
    assert code == 0
    [record] = json.loads(out)
    assert record["handle"] == body["thing"]["id"]
    assert [m["site"] for m in record["members"]] == ["Paris", "Corte"]


@pytest.mark.mariadb
def test_a_shared_database_is_read_with_database(mariadb_database: Callable[[], str]) -> None:
    url = mariadb_database()
    fill(url)
    code, out, _ = invoke("pending", "--database", url, "--json")
    assert code == 0 and json.loads(out)[0]["key"] == "k:Corte"
    code, out, _ = invoke("list", "--database", url, "--json")
    assert code == 0 and json.loads(out)[0]["handle"] == "aa0000000001"
    wrong = url.replace("edgescope-test", "not-the-password")
    code, _, err = invoke("list", "--database", wrong)
    assert code == 1 and "cannot read the registry" in err and "not-the-password" not in err

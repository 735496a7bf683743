"""The bench fails loudly (issue 19): a path answering errors is a FAILED figure with its first
error, the run exits 1 and leaves docs/benchmarks.md alone; throughput counts 2xx only.

Real servers on loopback: an aiohttp app in a thread (the bench's measuring functions run
their own event loops), and real ``edgescope proxy run`` processes for the two-proxy case.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench.__main__ as bench_main
import pytest
from aiohttp import web
from bench._harness import edgescope, free_port, site_toml, sites, throughput
from bench._run import Options, finish
from bench.proxy_latency import measure_all

from bench import _results

NOT_A_PEER = "'Paris' is not a peer of Corte"


class Backend:
    """A loopback HTTP server in its own thread: ``/ok`` 200, ``/forbidden`` 403,
    ``/busy`` 503, ``/flaky`` 200 and 503 in turn; it counts what it answered."""

    def __init__(self) -> None:
        self.answered: Counter[int] = Counter()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    async def _start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            status = {"ok": 200, "forbidden": 403, "busy": 503}.get(name)
            if name == "flaky":
                status = 200 if sum(self.answered.values()) % 2 else 503
            status = status or 404
            self.answered[status] += 1
            if status == 403:
                return web.json_response(
                    {"error": {"code": 403, "message": NOT_A_PEER}}, status=403
                )
            return web.json_response({"items": []}, status=status)

        app = web.Application()
        app.router.add_get("/{name}", handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Backend:
        self.thread.start()
        assert self.ready.wait(30), "the backend did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def backend() -> Iterator[Backend]:
    with Backend() as server:
        yield server


def targets(backend: Backend, *names: str) -> dict[str, tuple[str, dict[str, str] | None]]:
    return {name: (f"{backend.url}/{name}", None) for name in names}


def test_paths_answering_403_or_503_are_failed_with_their_first_error(backend: Backend) -> None:
    rows = {r["path"]: r for r in measure_all(targets(backend, "ok", "forbidden", "busy"), True)}
    assert rows["ok"]["failed"] is None and rows["ok"]["errors"] == 0 and rows["ok"]["rps"] > 0
    forbidden = rows["forbidden"]
    assert forbidden["failed"].startswith(f"{forbidden['errors']} of {forbidden['errors']} calls")
    assert "the first: 403 " in forbidden["failed"] and NOT_A_PEER in forbidden["failed"]
    assert forbidden["first_error"].startswith("403 ") and forbidden["rps"] == 0
    assert forbidden["p50"] is None and forbidden["added_p50"] is None  # no time of an error
    assert rows["busy"]["first_error"].startswith("503 ") and rows["busy"]["rps"] == 0
    json.dumps(list(rows.values()), allow_nan=False)  # nothing stored is NaN


def test_throughput_counts_2xx_answers_only(backend: Backend) -> None:
    rate = asyncio.run(throughput(f"{backend.url}/flaky", 0.5, concurrency=4))
    assert rate.tally.ok == backend.answered[200] > 0
    assert rate.tally.errors == backend.answered[503] > 0
    assert rate.rps == pytest.approx(rate.tally.ok / rate.seconds)
    assert str(rate.tally.first_error).startswith("503 ")


def test_a_call_with_no_answer_is_an_error_not_a_crash() -> None:
    port = free_port()  # nothing listens there: refused
    rate = asyncio.run(throughput(f"http://127.0.0.1:{port}/x", 0.2, concurrency=2))
    assert rate.rps == 0 and rate.tally.ok == 0 and rate.tally.errors > 0
    assert str(rate.tally.first_error).startswith("no answer: ")


def test_two_proxies_where_corte_does_not_know_paris_fail_with_the_403() -> None:
    """The bug of issue 19: Paris signs its hop, Corte lists no peer, so every call through
    Paris to Corte is refused; the bench must say so, not time the refusals."""
    with sites(2) as (_, info), edgescope(
        site_toml("Corte", backend=f"http://127.0.0.1:{info['ports'][1]}")
    ) as (_, corte), edgescope(
        site_toml("Paris", backend=f"http://127.0.0.1:{info['ports'][0]}", peers={"Corte": corte},
                  extra="[breaker]\nprobe_interval = 0")
    ) as (_, paris):  # fmt: skip
        rows = measure_all(
            {
                "direct": (f"http://127.0.0.1:{info['ports'][0]}/image/items", None),
                "through Paris to Corte": (f"{paris}/image/items", {"X-Scope": "{image: Corte}"}),
            },
            smoke=True,
        )
    hop = rows[1]
    assert hop["failed"] is not None and hop["ok"] == 0
    assert hop["first_error"].startswith("403 ") and NOT_A_PEER in hop["first_error"]


def test_a_run_with_a_failed_path_exits_1_and_leaves_the_docs(
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# edgescope benchmarks\n\nfigures of an earlier run\n")
    monkeypatch.setattr(_results, "DOCS", docs)
    monkeypatch.setattr(_results, "ARTIFACTS", tmp_path / "artifacts")
    results = tmp_path / "results"

    def latency(smoke: bool) -> list[dict[str, Any]]:
        return measure_all(targets(backend, "ok", "forbidden"), smoke)

    monkeypatch.setattr(bench_main, "FIGURES", {"latency": latency})
    monkeypatch.setattr(_results, "RESULTS", results)
    options = Options(docs=True)  # a full run that would write the docs: refused
    assert finish([bench_main.proxy_outcome(smoke=True)], options) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and NOT_A_PEER in out and "docs/benchmarks.md left unchanged" in out
    assert docs.read_text() == "# edgescope benchmarks\n\nfigures of an earlier run\n"
    assert not results.exists()  # a failed run is never stored where the docs cite results
    (stored,) = (tmp_path / "artifacts" / "bench-failed").glob("proxy-*.json")
    failed = json.loads(stored.read_text())["failed"]
    assert len(failed) == 1 and failed[0].startswith("latency, forbidden: ")

    def healthy(smoke: bool) -> list[dict[str, Any]]:
        return measure_all(targets(backend, "ok"), smoke)

    monkeypatch.setattr(bench_main, "FIGURES", {"latency": healthy})
    assert finish([bench_main.proxy_outcome(smoke=True)], options) == 0
    assert "## Proxy (issue 3)" in docs.read_text()  # the same gate lets a clean run through
    assert len(list(results.glob("proxy-*.json"))) == 1


def test_a_figure_that_cannot_run_is_failed_as_a_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(_results, "ARTIFACTS", tmp_path)

    def broken(smoke: bool) -> list[dict[str, Any]]:
        raise RuntimeError("edgescope proxy run exited before listening: bad config")

    monkeypatch.setattr(bench_main, "FIGURES", {"fanout": broken})
    assert finish([bench_main.proxy_outcome(smoke=True)], Options(smoke=True)) == 1
    out = capsys.readouterr().out
    assert "fanout (the whole figure): RuntimeError: edgescope proxy run exited" in out

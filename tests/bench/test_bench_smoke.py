"""A tiny run of the benchmark harness: every library gets every event, a report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tether.bench.runner import PLANS, run
from tether.bench.workloads import LIBRARIES


def _records(results: dict[str, Any], workload: str) -> dict[str, dict[str, Any]]:
    return {r["lib"]: r for r in results["records"] if r["workload"] == workload}


async def test_smoke_run_delivers_every_event_and_writes_the_report(
    tmp_path: Path,
) -> None:
    async with asyncio.timeout(120):
        folder = await run(
            PLANS["smoke"],
            tmp_path,
            only=("floor", "startup", "flood", "churn", "storm"),
        )

    results = json.loads((folder / "results.json").read_text())
    assert [r for r in results["records"] if "error" in r] == []
    assert "## Message flood" in (folder / "report.md").read_text()

    startup = [r for r in results["records"] if r["workload"] == "startup"]
    for record in startup:
        assert record["guilds_seen"] == record["guilds"], record
    assert {r["lib"] for r in startup} == set(LIBRARIES)

    floods = [r for r in results["records"] if r["workload"] == "flood"]
    assert {r["lib"] for r in floods} == set(LIBRARIES)
    for record in floods:
        assert record["received"] == record["sent"], record

    churn = _records(results, "churn")
    assert set(churn) == set(LIBRARIES)
    for record in churn.values():
        assert record["received"] == record["sent"], record

    storm = _records(results, "storm")
    assert set(storm) == set(LIBRARIES)
    for record in storm.values():
        assert record["drops"] >= 1, record
        assert record["missing"] == 0, record
    assert storm["tether"]["duplicated"] == 0

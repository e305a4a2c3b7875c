"""`tether demo --json`, as a user runs it: every fault played, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys


def test_demo_json_summary_shows_no_loss_and_no_duplicate() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.cli",
            "demo",
            "--json",
            "--guilds=40",
            "--members=30",
            "--time-scale=0.5",
            "--duration=24",
            "--heartbeat=0.5",
            "--slow=1.5",
            "--ping-every=0.5",
            "--rate=80",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["lost"] == 0 and summary["duplicated"] == 0
    assert summary["dispatched"] == summary["delivered"] > 0
    assert summary["replies_sent"] == summary["pings_received"] > 0
    outcomes = {fault["fault"]: fault["outcome"] for fault in summary["faults"]}
    assert outcomes["TCP dropped, no close frame"] == "resumed"
    assert outcomes["zombie: server silent, TCP open"] == "resumed"
    assert outcomes["op 7 RECONNECT"] == "resumed"
    assert outcomes["op 9 INVALID_SESSION (false)"] == "re-identified"
    assert outcomes["server restart (all sessions lost)"] == "re-identified"
    assert outcomes["slow handler (blocks the loop)"].endswith("session kept")
    # The first Ready, and at least one more after a re-identify (op 9 false and
    # the restart may share one when the restart comes during the op 9 wait).
    assert summary["events_by_type"]["Ready"] >= 2

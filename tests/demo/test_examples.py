"""The example bots run against the emulator and do what their docstrings say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str, seconds: float) -> str:
    result = subprocess.run(
        [sys.executable, name, "--emulator", "--seconds", str(seconds)],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_ping_bot_answers_pings() -> None:
    out = run_example("ping_bot.py", 3)
    assert "ready as" in out
    assert out.count("answered a ping") >= 2


def test_moderation_bot_deletes_banned_words_and_tracks_members() -> None:
    out = run_example("moderation_bot.py", 5)
    assert "deleted a message" in out
    assert "a member joined" in out or "a member left" in out

"""examples/rich_presence.py runs against the emulated app and keeps its presence."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rich_presence.py"


async def test_the_example_keeps_the_presence_across_a_restart(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The example points XDG_RUNTIME_DIR at its own temporary directory;
    # monkeypatch puts the variable back afterwards.
    monkeypatch.setenv("XDG_RUNTIME_DIR", "unset-by-the-example")
    spec = importlib.util.spec_from_file_location("rich_presence_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    caplog.set_level(logging.INFO, logger="rich_presence")

    async with asyncio.timeout(10):
        await module.run_against_emulator(1)

    shown = [
        r.getMessage() for r in caplog.records if "the app shows" in r.getMessage()
    ]
    assert len(shown) == 2
    assert all("Exploring the emulator" in line for line in shown)

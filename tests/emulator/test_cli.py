"""``tether emulate``: help, startup output, and stopping on a signal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tether.emulator.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_help_explains_itself(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    for words in ("local Discord", "--guilds", "--scenario", "--heartbeat", "--shards",
                  "--max-concurrency", "control URL", "127.0.0.1"):  # fmt: skip
        assert words in out, words


def test_bad_arguments_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--guilds", "many"])
    assert stopped.value.code == 2


def test_a_missing_scenario_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--scenario", str(tmp_path / "none.json")]) == 1
    assert "cannot start" in capsys.readouterr().err


def test_an_invalid_scenario_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"action": "explode"}]', encoding="utf-8")
    assert main(["--scenario", str(path)]) == 2
    assert "unknown action" in capsys.readouterr().err


async def _run_cli(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether.emulator", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            line = await process.stdout.readline()
        urls = json.loads(line)
        assert urls["api_url"].startswith("http://127.0.0.1:")
        assert urls["control_url"].startswith("http://127.0.0.1:")
        headers = {"Authorization": f"Bot {urls['token']}"}
        async with aiohttp.ClientSession() as http, asyncio.timeout(10):
            response = await http.get(urls["api_url"] + "/gateway/bot", headers=headers)
            body = await response.json()
            assert body["url"] == urls["gateway_url"]
            assert body["shards"] == 2
            status = await http.get(urls["control_url"] + "status")
            assert (await status.json())["world"]["guilds"] == 3
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_command_serves_until_interrupted() -> None:
    await _run_cli("--json", "--guilds", "3", "--members", "4", "--shards", "2")


async def test_the_banner_names_every_address() -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether.emulator", "--guilds", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(20):
            while not lines or not lines[-1].startswith("Press Ctrl+C"):
                lines.append((await process.stdout.readline()).decode().strip())
        text = "\n".join(lines)
        for label in (
            "REST base URL",
            "gateway URL",
            "control URL",
            "token",
            "2 guilds",
        ):
            assert label in text
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    "argv", [["--port", "99999"], ["--gateway-port", "-1"], ["--max-records", "0"]]
)
def test_out_of_range_numbers_are_refused_with_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2

"""The emulator shares constants with the client, never its codec or logic."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "tether.gateway.protocol",
    "tether.gateway.codec",
    "tether.gateway.limits",
    "tether.rest",
    "tether.client",
    "tether.manager",
    "tether.drivers",
    "tether.cache",
    "tether.events",
)


def test_importing_the_emulator_loads_no_client_code() -> None:
    code = (
        "import sys, tether.emulator, tether.emulator.cli\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('tether'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = result.stdout.split()
    assert "tether.emulator" in loaded
    for name in loaded:
        assert not name.startswith(FORBIDDEN), name

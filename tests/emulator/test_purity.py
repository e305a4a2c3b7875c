"""The emulator shares constants with the client, never its codec or logic.

A bug in tether's encoder must not be mirrored by the server that tests it, so
the emulator's modules may import only these parts of tether.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tether.emulator

ALLOWED = (
    "tether.emulator",
    "tether.gateway.opcodes",
    "tether.gateway.intents",
    "tether.errors",
    "tether._secret",
)


def _tether_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "tether" or name.startswith("tether.")}


def test_emulator_modules_import_only_shared_constants() -> None:
    package = Path(tether.emulator.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        for name in _tether_imports(module):
            assert name.startswith(ALLOWED), f"{module.name} imports {name}"

"""tether.gateway does no I/O: none of its modules imports asyncio, socket or time."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import tether.gateway

FORBIDDEN = {"asyncio", "socket", "time"}


def gateway_modules() -> list[ModuleType]:
    names = [
        info.name
        for info in pkgutil.iter_modules(
            tether.gateway.__path__, prefix="tether.gateway."
        )
    ]
    return [tether.gateway, *(importlib.import_module(name) for name in names)]


def imported_roots(source: str) -> set[str]:
    """Top-level names of everything `source` imports (absolute imports)."""
    tree = ast.parse(source)
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return roots


def test_the_gateway_package_has_the_sans_io_modules() -> None:
    names = {module.__name__ for module in gateway_modules()}

    assert {
        "tether.gateway.codec",
        "tether.gateway.limits",
        "tether.gateway.protocol",
    } <= names


@pytest.mark.parametrize("module", gateway_modules(), ids=lambda m: m.__name__)
def test_gateway_module_imports_no_io(module: ModuleType) -> None:
    assert imported_roots(inspect.getsource(module)) & FORBIDDEN == set()


def test_the_import_check_sees_every_import_form() -> None:
    source = (
        "import time\n"
        "from asyncio import sleep\n"
        "import socket as s\n"
        "def f():\n"
        "    import os.path\n"
        "from . import codec\n"
    )

    assert imported_roots(source) == FORBIDDEN | {"os"}

"""Where the Discord app's IPC endpoint may be: candidate paths, in order.

On Linux and macOS the app makes a Unix socket ``discord-ipc-{n}`` (``n`` from 0 to
9, the first free one) in the first of these that is set: ``$XDG_RUNTIME_DIR``,
``$TMPDIR``, ``$TMP``, ``$TEMP``, else ``/tmp``. The client looks in that same
directory (not in the later ones: they are not where the app puts it), and inside
it also where the Flatpak and Snap packages of Discord put theirs. On Windows the
endpoint is the named pipe ``\\\\?\\pipe\\discord-ipc-{n}``.

Pure functions of the environment given; nothing here touches the file system.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Final

__all__ = [
    "ENDPOINT_COUNT",
    "RUNTIME_DIR_VARIABLES",
    "SANDBOX_SUBDIRECTORIES",
    "candidate_paths",
    "endpoint_name",
    "runtime_directory",
]

#: Endpoints the app may use: ``discord-ipc-0`` to ``discord-ipc-9``.
ENDPOINT_COUNT: Final = 10
#: Variables naming the directory of the socket, the first set one winning.
RUNTIME_DIR_VARIABLES: Final = ("XDG_RUNTIME_DIR", "TMPDIR", "TMP", "TEMP")
#: Where sandboxed packages of the app put the socket, inside that directory.
SANDBOX_SUBDIRECTORIES: Final = ("", "app/com.discordapp.Discord", "snap.discord")

_FALLBACK_DIRECTORY: Final = "/tmp"
_PIPE_PREFIX: Final = "\\\\?\\pipe\\"


def endpoint_name(index: int) -> str:
    """The endpoint's file or pipe name for ``index``."""
    return f"discord-ipc-{index}"


def runtime_directory(environ: Mapping[str, str]) -> str:
    """The directory the app puts its socket in, under ``environ``."""
    for name in RUNTIME_DIR_VARIABLES:
        value = environ.get(name)
        if value:
            return value
    return _FALLBACK_DIRECTORY


def candidate_paths(environ: Mapping[str, str], platform: str) -> list[str]:
    """Every endpoint to try, in order: by index, then plain before sandboxed.

    Args:
        environ: the environment (``os.environ``).
        platform: ``sys.platform``.
    """
    if platform == "win32":
        return [_PIPE_PREFIX + endpoint_name(n) for n in range(ENDPOINT_COUNT)]
    base = runtime_directory(environ)
    # posixpath.join skips the empty subdirectory: "<base>/discord-ipc-<n>".
    return [
        posixpath.join(base, sub, endpoint_name(n))
        for n in range(ENDPOINT_COUNT)
        for sub in SANDBOX_SUBDIRECTORIES
    ]

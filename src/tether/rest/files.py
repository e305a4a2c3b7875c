"""Files attached to a message: what :class:`File` holds and how it is read."""

from __future__ import annotations

import asyncio
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["File", "FileSource"]

#: Where a file's bytes come from: the bytes themselves, a path, or an open binary
#: file (read from its current position).
FileSource = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO


@dataclass(frozen=True, slots=True)
class File:
    """A file to upload with a message.

    Args:
        name: the file name Discord shows (``"report.txt"``).
        source: the content as bytes, a path (``str`` or ``os.PathLike``) read when
            the request is made, or an open binary file read from its position.
        description: alt text shown for the attachment.
        content_type: the MIME type; guessed from ``name`` when not given.
    """

    name: str
    source: FileSource
    description: str | None = None
    content_type: str | None = None

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or "\\" in self.name:
            raise ValueError("a file name must be non-empty and not a path")

    @property
    def mime_type(self) -> str:
        """The MIME type sent with the file."""
        if self.content_type:
            return self.content_type
        guessed, _ = mimetypes.guess_type(self.name)
        return guessed or "application/octet-stream"

    async def read(self) -> bytes:
        """Return the file's bytes; paths and open files are read in a thread."""
        source = self.source
        if isinstance(source, bytes | bytearray | memoryview):
            return bytes(source)
        if isinstance(source, str | os.PathLike):
            return await asyncio.to_thread(Path(source).read_bytes)
        return await asyncio.to_thread(source.read)

    def __repr__(self) -> str:
        return f"File(name={self.name!r})"

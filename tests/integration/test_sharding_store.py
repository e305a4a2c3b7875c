"""Session stores: what is saved comes back, the file is replaced atomically, and
a damaged file is ignored rather than trusted."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from tether.sessions import JSONFileSessionStore, MemorySessionStore, StoredSession


def session(shard_id: int, seq: int = 7) -> StoredSession:
    return StoredSession(shard_id, 8, f"session-{shard_id}", seq, "wss://r/", 1.5)


async def test_the_file_store_gives_back_what_it_saved(tmp_path: Path) -> None:
    store = JSONFileSessionStore(tmp_path / "sessions.json")

    await store.save([session(0), session(2)])
    await store.save([session(2, seq=9)])
    await store.discard([0])

    again = JSONFileSessionStore(tmp_path / "sessions.json")
    assert await again.load() == {2: session(2, seq=9)}
    assert await again.load([0, 1]) == {}


async def test_the_memory_store_gives_back_what_it_saved() -> None:
    store = MemorySessionStore()

    await store.save([session(0), session(1)])
    await store.discard([1])

    assert await store.load() == {0: session(0)}
    assert await store.load([1]) == {}


async def test_a_missing_file_is_an_empty_store(tmp_path: Path) -> None:
    assert await JSONFileSessionStore(tmp_path / "none.json").load() == {}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"version": 2, "sessions": []}',
        '{"version": 1, "sessions": {}}',
        '{"version": 1, "sessions": [{"shard_id": 5, "shard_count": 4}]}',
        '{"version": 1, "sessions": [{"shard_id": 0, "shard_count": 1, '
        '"session_id": "", "seq": 1, "resume_url": null, "saved_at": 0}]}',
    ],
)
async def test_a_damaged_file_is_ignored_with_a_warning(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sessions.json"
    await asyncio.to_thread(path.write_text, content)

    assert await JSONFileSessionStore(path).load() == {}
    assert any(r.levelno == logging.WARNING for r in caplog.records)


async def test_saving_over_a_damaged_file_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    await asyncio.to_thread(path.write_text, "{not json")
    store = JSONFileSessionStore(path)

    await store.save([session(1)])

    document = json.loads(await asyncio.to_thread(path.read_text))
    assert document == {"version": 1, "sessions": [session(1).to_json()]}
    leftovers = await asyncio.to_thread(lambda: sorted(tmp_path.iterdir()))
    assert leftovers == [path]


async def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    store = JSONFileSessionStore(path)
    await store.save([session(0)])
    blocked = JSONFileSessionStore(tmp_path / "missing-dir" / "sessions.json")

    with pytest.raises(OSError):
        await blocked.save([session(1)])

    assert await JSONFileSessionStore(path).load() == {0: session(0)}


async def test_concurrent_saves_of_one_store_keep_every_session(tmp_path: Path) -> None:
    store = JSONFileSessionStore(tmp_path / "sessions.json")

    await asyncio.gather(*(store.save([session(i)]) for i in range(8)))

    assert sorted(await store.load()) == list(range(8))

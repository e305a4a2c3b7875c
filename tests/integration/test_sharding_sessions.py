"""Sessions that outlive the client: a restarted process resumes every shard from
the store with no event lost and no IDENTIFY spent; re-sharding and rolling
restarts keep the cache of the guilds that stay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import stat
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest
from test_sharding_support import (
    WINDOW_S,
    Recorder,
    assert_exactly_once,
    gaps_per_bucket,
    make_client,
    ready,
    running,
    sharded_emulator,
    until,
)

from tether import events as ev
from tether.emulator import Emulator
from tether.emulator.records import SessionState
from tether.manager import Connected
from tether.models import shard_for
from tether.sessions import JSONFileSessionStore, StoredSession
from tether.sharding import ShardedClient


async def test_a_restarted_process_resumes_every_shard_and_loses_no_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tether")
    path = tmp_path / "sessions.json"
    async with sharded_emulator(4, max_concurrency=2) as emu:
        first = make_client(
            emu, session_store=JSONFileSessionStore(path), io_thread=True
        )
        before = Recorder(first)
        async with running(first):
            await ready(first)
            emu.start_activity(200.0, kinds=("message", "typing"))
            await until(lambda: len(before.of(ev.MessageCreate)) >= 20)
        # The process is gone; Discord keeps its sessions and their events.
        await asyncio.sleep(0.2)

        second = make_client(
            emu, session_store=JSONFileSessionStore(path), io_thread=True
        )
        after = Recorder(second)
        async with running(second):
            await ready(second)
            await until(lambda: len(after.of(ev.MessageCreate)) >= 20)
            await emu.stop_activity()
            await assert_exactly_once(emu, before, after)

            sessions = emu.sessions()
            assert len(emu.identify_log) == 4
            assert [s.resumes for s in sessions] == [1, 1, 1, 1]
            assert all(s.state is SessionState.ACTIVE for s in sessions)
            assert second.shard_count == 4
            assert {c.resumed for c in after.of(Connected)} == {True}
            # Ready belongs to new sessions; these were continued.
            assert not after.of(ev.Ready)
            assert {i.session_id for i in second.shards.values()} == {
                s.session_id for s in sessions
            }
        assert await JSONFileSessionStore(path).load() != {}
        assert emu.token not in caplog.text
        assert "resuming session" in caplog.text


async def test_the_session_file_holds_sessions_and_never_the_token(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.json"
    async with sharded_emulator(2, max_concurrency=2) as emu:
        async with running(
            make_client(emu, session_store=JSONFileSessionStore(path))
        ) as c:
            await ready(c)

        text = await asyncio.to_thread(path.read_text)
        document = json.loads(text)
        assert emu.token not in text
        assert emu.token.split(".")[-1] not in text
        mode = (await asyncio.to_thread(path.stat)).st_mode
        assert stat.S_IMODE(mode) == 0o600
        assert {s["shard_id"] for s in document["sessions"]} == {0, 1}
        assert {s["session_id"] for s in document["sessions"]} == {
            s.session_id for s in emu.sessions()
        }
        assert not await asyncio.to_thread(lambda: list(tmp_path.glob(".*.tmp")))


async def test_a_stored_session_that_no_longer_resumes_falls_back_to_identify(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.json"
    async with sharded_emulator(3, max_concurrency=1) as emu:
        async with running(
            make_client(emu, session_store=JSONFileSessionStore(path))
        ) as c:
            await ready(c)
        stored = await JSONFileSessionStore(path).load()
        # One session ended meanwhile, on the server's side.
        await JSONFileSessionStore(path).save(
            [StoredSession(1, 3, "gone-session", 5, emu.resume_url, 0.0)]
        )

        second = make_client(emu, session_store=JSONFileSessionStore(path))
        recorder = Recorder(second)
        async with running(second):
            await ready(second)

            assert [r.shard_id for r in emu.identify_log] == [0, 1, 2, 1]
            assert all(
                gap >= WINDOW_S for gap in gaps_per_bucket(emu.identify_log, 1)[0]
            )
            assert emu.counters.rejected_identifies == 0
            live = {
                s.shard_id: s for s in emu.sessions() if s.state is SessionState.ACTIVE
            }
            assert live[0].session_id == stored[0].session_id
            assert live[2].session_id == stored[2].session_id
            assert live[1].session_id != stored[1].session_id
            assert [r.shard_id for r in recorder.of(ev.Ready)] == [1]
            assert second.shard(1).is_ready


async def test_stop_and_start_resumes_from_memory_unless_told_otherwise() -> None:
    async with (
        sharded_emulator(2, max_concurrency=2) as emu,
        running(make_client(emu)) as client,
    ):
        await ready(client)
        await client.stop()
        client.start()
        await until(lambda: emu.counters.resumes == 2)
        await ready(client)
        assert len(emu.identify_log) == 2

        await client.stop(keep_sessions=False)
        assert all(s.state is SessionState.CLOSED for s in emu.sessions())
        client.start()
        await until(lambda: len(emu.identify_log) == 4)
        await ready(client)


@contextlib.asynccontextmanager
async def watching_guilds(
    client: ShardedClient, guild_ids: Collection[int]
) -> AsyncIterator[list[int]]:
    """Note every guild of ``guild_ids`` seen missing or unavailable in the cache."""
    vanished: list[int] = []

    async def watch() -> None:
        while True:
            for guild_id in guild_ids:
                guild = client.cache.guild(guild_id)
                if guild is None or guild.unavailable:
                    vanished.append(guild_id)
            await asyncio.sleep(0.002)

    task = asyncio.create_task(watch())
    try:
        yield vanished
    finally:
        task.cancel()


def stream_slowly(
    shards: int, **options: Any
) -> contextlib.AbstractAsyncContextManager[Emulator]:
    """An emulator whose GUILD_CREATEs trickle in after READY."""
    return sharded_emulator(shards, guild_stream_delay_s=0.02, **options)


async def test_resharding_keeps_every_guild_cached_and_moves_onto_the_new_count() -> (
    None
):
    async with (
        stream_slowly(shards=2, max_concurrency=4) as emu,
        running(make_client(emu, shard_count=2)) as client,
    ):
        recorder = Recorder(client)
        await ready(client)
        guild_ids = list(emu.world.guilds)

        async with watching_guilds(client, guild_ids) as vanished:
            await client.reshard(4)

        assert vanished == []
        assert not recorder.of(ev.GuildLeave)
        assert client.shard_ids == [0, 1, 2, 3]
        assert client.is_ready
        live = [s for s in emu.sessions() if s.state is SessionState.ACTIVE]
        assert sorted(s.shard or (0, 0) for s in live) == [(i, 4) for i in range(4)]
        assert {g.id for g in client.cache.guilds()} == set(guild_ids)
        assert all(client.shard_for_guild(g) == shard_for(g, 4) for g in guild_ids)


async def test_resharding_a_subset_drops_only_the_guilds_that_moved_away() -> None:
    async with (
        stream_slowly(shards=2, max_concurrency=4) as emu,
        running(make_client(emu, shard_count=2, shard_ids=[0])) as client,
    ):
        await ready(client)
        mine = [g for g in emu.world.guilds if shard_for(g, 2) == 0]
        stay = [g for g in mine if shard_for(g, 4) == 0]
        leave = [g for g in mine if shard_for(g, 4) == 2]
        arrive = [g for g in emu.world.guilds if shard_for(g, 4) == 1]
        assert stay and leave and arrive

        async with watching_guilds(client, stay) as vanished:
            await client.reshard(4, shard_ids=[0, 1])

        assert vanished == []
        assert {g.id for g in client.cache.guilds()} == set(stay) | set(arrive)
        assert client.shard_ids == [0, 1]


async def test_a_rolling_restart_renews_one_identify_group_at_a_time() -> None:
    async with (
        stream_slowly(shards=4, max_concurrency=2) as emu,
        running(make_client(emu)) as client,
    ):
        recorder = Recorder(client)
        await ready(client)
        old = {s.shard_id: s.session_id for s in emu.sessions()}
        readies = len(recorder.of(ev.Ready))
        guild_ids = list(emu.world.guilds)

        async with watching_guilds(client, guild_ids) as vanished:
            await client.rolling_restart()

        assert vanished == []
        assert not recorder.of(ev.GuildLeave)
        assert client.is_ready
        renewed = sorted(emu.identify_log[4:], key=lambda r: r.time)
        assert [r.shard_id for r in renewed[:2]] == [0, 1]
        assert sorted(r.shard_id for r in renewed[2:]) == [2, 3]
        sessions = {s.session_id: s for s in emu.sessions()}
        second_group_start = min(r.time for r in renewed[2:])
        first_group_ready = max(sessions[r.session_id].created_at for r in renewed[:2])
        # Shards 2 and 3 kept their old sessions until group 0 was back.
        for shard_id in (2, 3):
            ended = sessions[old[shard_id]].ended_at
            assert ended is not None and ended >= first_group_ready
        assert second_group_start >= first_group_ready
        assert all(
            s.state is SessionState.CLOSED for s in map(sessions.get, old.values()) if s
        )
        restarted = [r.shard_id for r in recorder.of(ev.Ready)[readies:]]
        assert sorted(restarted[:2]) == [0, 1]
        assert sorted(restarted[2:]) == [2, 3]
        assert all(
            gap >= WINDOW_S
            for gaps in gaps_per_bucket(emu.identify_log, 2).values()
            for gap in gaps
        )
        assert emu.counters.rejected_identifies == 0

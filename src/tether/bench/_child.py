"""One library under test, alone in its process, driven over stdin and stdout.

The parent starts ``python -m tether.bench._child '<json settings>'``. The child
imports its library, points every URL the library knows at the emulator, prints
``{"ev": "imported"}`` and then answers one JSON command per stdin line with one
JSON line on stdout:

- ``start``: connect; the answer comes once every guild is available (or the
  library's own ready signal when the world has no guild).
- ``stats``: counters, CPU seconds and memory now.
- ``wait``: wait until ``n`` events of ``kind`` arrived (bounded by ``timeout_s``),
  then the same as ``stats``.
- ``stop``: close the client and exit.

Every library gets the same handler: count the event and touch one field.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import importlib
import json
import logging
import os
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

__all__: list[str] = []

logger = logging.getLogger(__name__)

_PAGE: Final[int] = os.sysconf("SC_PAGE_SIZE")
# Storm messages carry their index as "s:<k>" so the child can spot gaps.
_STORM_PREFIX: Final[str] = "s:"


def _rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_bytes() -> int:
    # Not ru_maxrss: Linux carries it over exec from the forked parent.
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) * 1024
    return _rss_bytes()


class Tally:
    """What the handlers saw: counts per kind, message times and storm indexes.

    Args:
        storm_size: how many storm messages may arrive (0: no storm).
    """

    def __init__(self, storm_size: int) -> None:
        self.counts: dict[str, int] = {
            "message": 0,
            "presence": 0,
            "member": 0,
            "guild": 0,
        }
        self.touched = 0
        self.first_message_at: float | None = None
        self.last_message_at: float | None = None
        self.seen = bytearray(storm_size)
        self.duplicates = 0
        self._targets: dict[str, tuple[int, asyncio.Event]] = {}

    def hit(self, kind: str, field: object) -> None:
        """Count one event of ``kind``; ``field`` is the one field touched."""
        count = self.counts[kind] + 1
        self.counts[kind] = count
        if field is not None:
            self.touched += 1
        target = self._targets.get(kind)
        if target is not None and count >= target[0]:
            target[1].set()

    def message(self, content: str) -> None:
        """Count one MESSAGE_CREATE by its content."""
        now = time.monotonic()
        if self.first_message_at is None:
            self.first_message_at = now
        self.last_message_at = now
        if content.startswith(_STORM_PREFIX):
            index = int(content[2:])
            if index < len(self.seen):
                if self.seen[index]:
                    self.duplicates += 1
                self.seen[index] = 1
        self.hit("message", content)

    async def wait(self, kind: str, n: int, timeout_s: float) -> bool:
        """Wait until ``n`` events of ``kind`` arrived; whether they did in time."""
        if self.counts[kind] >= n:
            return True
        reached = asyncio.Event()
        self._targets[kind] = (n, reached)
        try:
            async with asyncio.timeout(timeout_s):
                await reached.wait()
        except TimeoutError:
            return False
        finally:
            del self._targets[kind]
        return True

    def snapshot(self) -> dict[str, Any]:
        """Counters, time and CPU now; memory after a full collection."""
        now, cpu_s = time.monotonic(), _cpu_s()
        gc.collect()
        storm_missing = len(self.seen) - sum(self.seen) if self.seen else 0
        return {
            "t": now,
            "cpu_s": cpu_s,
            "rss": _rss_bytes(),
            "peak_rss": _peak_rss_bytes(),
            "counts": dict(self.counts),
            "first_message_at": self.first_message_at,
            "last_message_at": self.last_message_at,
            "storm_missing": storm_missing,
            "storm_duplicates": self.duplicates,
        }


class Peer:
    """One library's client behind the same small interface."""

    def __init__(self, settings: dict[str, Any], tally: Tally) -> None:
        self.settings = settings
        self.tally = tally
        self.ready_signal_at: float | None = None

    async def start(self) -> None:
        """Connect and return once the library is ready."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close the connection."""
        raise NotImplementedError


class TetherPeer(Peer):
    """tether's Client."""

    async def start(self) -> None:
        from tether.client import Client
        from tether.events import (
            GuildAvailable,
            MemberUpdate,
            MessageCreate,
            PresenceUpdate,
        )

        tally = self.tally
        client = Client(
            self.settings["token"],
            api_url=self.settings["api_url"],
            intents=self.settings["intents"],
            compress=self.settings["compress"],
            io_thread=self.settings["io_thread"],
            ready_timeout_s=60.0,
        )
        self.client = client

        @client.on(MessageCreate)
        def on_message(event: MessageCreate) -> None:
            tally.message(event.message.content)

        @client.on(PresenceUpdate)
        def on_presence(event: PresenceUpdate) -> None:
            tally.hit("presence", event.presence.status)

        @client.on(MemberUpdate)
        def on_member(event: MemberUpdate) -> None:
            tally.hit("member", event.member.nick)

        @client.on(GuildAvailable)
        def on_guild(event: GuildAvailable) -> None:
            tally.hit("guild", event.guild.id)

        client.start()
        await client.wait_until_ready()
        self.ready_signal_at = time.monotonic()

    async def stop(self) -> None:
        await self.client.close()


class DiscordPyPeer(Peer):
    """discord.py's Client; only its API base URLs are changed."""

    async def start(self) -> None:
        import discord
        import discord.asset
        import discord.gateway
        import discord.http
        import discord.invite
        import yarl

        # The only change: its base URLs. An unsharded discord.py Client does
        # not ask GET /gateway/bot: it opens its built-in gateway URL.
        api_url = self.settings["api_url"]
        discord.http.Route.BASE = api_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            self.settings["gateway_url"]
        )
        discord.asset.Asset.BASE = api_url
        discord.invite.Invite.BASE = api_url

        tally = self.tally
        intents = discord.Intents._from_value(self.settings["intents"])
        client = discord.Client(intents=intents)
        self.client = client
        ready = asyncio.Event()

        async def on_message(message: discord.Message) -> None:
            tally.message(message.content)

        async def on_presence_update(
            before: discord.Member, after: discord.Member
        ) -> None:
            tally.hit("presence", after.status)

        async def on_member_update(
            before: discord.Member, after: discord.Member
        ) -> None:
            tally.hit("member", after.nick)

        async def on_guild_available(guild: discord.Guild) -> None:
            tally.hit("guild", guild.id)

        async def on_ready() -> None:
            self.ready_signal_at = time.monotonic()
            ready.set()

        for handler in (
            on_message,
            on_presence_update,
            on_member_update,
            on_guild_available,
            on_ready,
        ):
            client.event(handler)

        await client.login(self.settings["token"])
        self.task = asyncio.create_task(client.connect(reconnect=True))
        if self.settings["guilds"] == 0:
            await ready.wait()

    async def stop(self) -> None:
        await self.client.close()
        self.task.cancel()


class HikariPeer(Peer):
    """hikari's GatewayBot; only its URLs are changed, no update check, no banner."""

    async def start(self) -> None:
        import hikari
        import hikari.urls

        api_url: str = self.settings["api_url"]
        # rest_url= is hikari's own knob; the others are only used to build
        # asset links, pointed here all the same.
        urls: Any = hikari.urls
        urls.BASE_URL = api_url
        urls.CDN_URL = api_url
        urls.MEDIA_PROXY_URL = api_url

        tally = self.tally
        bot = hikari.GatewayBot(
            self.settings["token"],
            intents=hikari.Intents(self.settings["intents"]),
            rest_url=api_url,
            banner=None,
            logs=None,
        )
        self.bot = bot

        async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
            tally.message(event.message.content or "")

        async def on_presence(event: hikari.PresenceUpdateEvent) -> None:
            tally.hit("presence", event.presence.visible_status)

        async def on_member(event: hikari.MemberUpdateEvent) -> None:
            tally.hit("member", event.member.nickname)

        async def on_guild(event: hikari.GuildAvailableEvent) -> None:
            tally.hit("guild", event.guild_id)

        bot.subscribe(hikari.GuildMessageCreateEvent, on_message)
        bot.subscribe(hikari.PresenceUpdateEvent, on_presence)
        bot.subscribe(hikari.MemberUpdateEvent, on_member)
        bot.subscribe(hikari.GuildAvailableEvent, on_guild)

        await bot.start(check_for_updates=False)
        self.ready_signal_at = time.monotonic()

    async def stop(self) -> None:
        await self.bot.close()


PEERS: Final[dict[str, type[Peer]]] = {
    "tether": TetherPeer,
    "discord.py": DiscordPyPeer,
    "hikari": HikariPeer,
}


_LOCAL_HOSTS: Final[frozenset[str]] = frozenset({"127.0.0.1", "localhost", "::1"})


def _guard_network() -> None:
    """Refuse to resolve any host but this machine's, whatever a library asks."""
    resolve = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in _LOCAL_HOSTS:
            logger.error("blocked a lookup of %s: only 127.0.0.1 is allowed", name)
            raise OSError(f"the benchmark allows no host but 127.0.0.1, not {name}")
        return resolve(host, *args, **kwargs)

    socket.getaddrinfo = local_only


# Imported before the child says it is ready to start, so that no library's
# import time is counted in its startup.
_IMPORTS: Final[dict[str, tuple[str, ...]]] = {
    "tether": ("tether.client", "tether.events"),
    "discord.py": ("discord", "discord.gateway", "yarl"),
    "hikari": ("hikari", "hikari.impl.gateway_bot"),
}


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


async def _serve(settings: dict[str, Any]) -> None:
    tally = Tally(int(settings.get("storm_size", 0)))
    for module in _IMPORTS[settings["lib"]]:
        importlib.import_module(module)
    peer = PEERS[settings["lib"]](settings, tally)
    reader = await _stdin_lines()
    _say({"ev": "imported", "cpu_s": _cpu_s(), "rss": _rss_bytes()})
    guilds = int(settings["guilds"])
    # Profiles the main thread from ready to stop (the flood, with io_thread off).
    profiler = cProfile.Profile() if settings.get("profile") else None

    async def start() -> dict[str, Any]:
        started = tally.snapshot()
        await peer.start()
        await tally.wait("guild", guilds, float(settings["ready_timeout_s"]))
        ready = tally.snapshot()
        ready["ready_signal_at"] = peer.ready_signal_at
        ready["started"] = started
        if profiler is not None:
            profiler.enable()
        return ready

    async def wait(command: dict[str, Any]) -> dict[str, Any]:
        reached = await tally.wait(
            command["kind"], int(command["n"]), float(command["timeout_s"])
        )
        return {**tally.snapshot(), "reached": reached}

    commands: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
        "start": lambda _: start(),
        "wait": wait,
    }
    while line := await reader.readline():
        command = json.loads(line)
        name = command["cmd"]
        if name == "stop":
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(settings["profile"])
            await peer.stop()
            _say({"ev": "stopped"})
            return
        if name == "stats":
            _say(tally.snapshot())
        else:
            _say(await commands[name](command))


def main() -> None:
    """Run the child named by the JSON settings in ``argv[1]``."""
    settings = json.loads(sys.argv[1])
    logging.basicConfig(
        level=settings.get("log_level", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    _guard_network()
    asyncio.run(_serve(settings))


if __name__ == "__main__":
    main()

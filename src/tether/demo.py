"""``tether demo``: a bot against the embedded emulator, through a fault timeline.

The demo starts :class:`~tether.emulator.Emulator` with a realistic world, runs a
ping bot on :class:`~tether.Client` against it, has emulated users talk to the bot,
and plays faults (a dropped socket, a zombie connection, op 7, op 9 false, a server
restart, a guild outage, a handler that blocks the event loop). It shows live what
the client sees and how it recovers, then compares what the emulator dispatched with
what the bot's handlers received: every dispatch must reach the handlers exactly
once. It exits non-zero if any was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tether import events as ev
from tether._event import Event
from tether.client import Client, current_dispatch
from tether.emulator import Emulator, Scenario, Step, WorldConfig
from tether.gateway.intents import Intents
from tether.manager import Backoff, Connected, Disconnected

__all__ = ["DEFAULT_SCENARIO", "DemoSummary", "main", "run_demo"]

logger = logging.getLogger(__name__)

#: The fault timeline, in seconds after the first Ready. ``slow_handler`` is the
#: demo's own step: an emulated user sends ``!slow`` and the bot's handler blocks
#: the event loop with ``time.sleep``.
DEFAULT_SCENARIO = Scenario(
    [
        Step(at_s=4.0, action="drop"),
        Step(at_s=9.0, action="go_silent"),
        Step(at_s=17.0, action="reconnect"),
        Step(at_s=22.0, action="invalidate_session", args={"resumable": False}),
        Step(at_s=29.0, action="restart"),
        Step(
            at_s=36.0, action="guild_outage", args={"guild_index": 1, "duration_s": 4}
        ),
        Step(at_s=43.0, action="send_message", args={"content": "!slow"}),
    ],
    name="default",
)

#: Words shown for each action in the live view and the summary.
FAULT_NAMES = {
    "drop": "TCP dropped, no close frame",
    "go_silent": "zombie: server silent, TCP open",
    "stop_acking": "heartbeats not acknowledged",
    "reconnect": "op 7 RECONNECT",
    "invalidate_session": "op 9 INVALID_SESSION",
    "restart": "server restart (all sessions lost)",
    "guild_outage": "guild outage",
    "send_message": "slow handler (blocks the loop)",
    "close": "close frame",
    "refuse_connections": "connections refused",
}


@dataclass(slots=True)
class FaultRecord:
    """One fault and how the client came through it."""

    at_s: float
    action: str
    what: str
    outcome: str = "pending"
    away_s: float | None = None
    resumed: bool | None = None
    _started: float = 0.0
    _disconnected_at: float | None = None


@dataclass(slots=True)
class DemoSummary:
    """What ``tether demo --json`` prints."""

    guilds: int
    members: int
    time_to_ready_s: float | None
    dispatched: int
    delivered: int
    lost: int
    duplicated: int
    abandoned_by_server: int
    events_by_type: dict[str, int]
    pings: int
    pings_received: int
    replies_sent: int
    reconnects: int
    resumes: int
    identifies: int
    faults: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    ok: bool = False


class PingBot:
    """The demo's bot: answers ``!ping`` and counts everything it is handed.

    ``!ping`` gets a reply with the gateway latency, then the reply is edited to add
    the REST round trip, as in ``examples/ping_bot.py``. ``!slow`` makes the handler
    block the event loop for ``slow_s`` seconds, to show that the gateway, running
    in its own thread, does not miss a heartbeat meanwhile.
    """

    def __init__(self, client: Client, *, slow_s: float = 5.0) -> None:
        self.client = client
        self.slow_s = slow_s
        # (session_id, seq) -> times a handler was handed the event of it.
        self.received: collections.Counter[tuple[str, int]] = collections.Counter()
        self.by_type: collections.Counter[str] = collections.Counter()
        self.replies = 0
        # Pings the handler was handed; every one must get its reply. (Pings sent
        # while a session was dead never reach the bot: Discord drops them too.)
        self.pings_seen = 0
        self.blocked_s = 0.0
        client.subscribe(Event, self.count)
        client.subscribe(ev.MessageCreate, self.on_message)

    def count(self, event: Event) -> None:
        self.by_type[type(event).__name__] += 1
        info = current_dispatch()
        if info is not None and info.session_id and info.seq is not None:
            self.received[(info.session_id, info.seq)] += 1

    async def on_message(self, event: ev.MessageCreate) -> None:
        message = event.message
        if message.author is not None and message.author.bot:
            return
        if message.content == "!slow":
            started = time.monotonic()
            time.sleep(self.slow_s)  # noqa: ASYNC251 (the demo's blocking handler)
            self.blocked_s = time.monotonic() - started
            return
        if message.content != "!ping":
            return
        self.pings_seen += 1
        latency = self.client.latency
        text = f"pong: gateway {latency * 1000:.1f} ms" if latency else "pong"
        sent_at = time.monotonic()
        reply = await self.client.rest.create_message(
            message.channel_id, text, reply_to=message.id
        )
        rest_ms = (time.monotonic() - sent_at) * 1000
        await self.client.rest.edit_message(
            message.channel_id,
            int(reply["id"]),
            content=f"{text}, REST {rest_ms:.1f} ms",
        )
        self.replies += 1


class Demo:
    """Runs the emulator, the bot and the timeline, and keeps the scores."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scenario = (
            Scenario.from_json(Path(args.scenario).read_text())
            if args.scenario
            else DEFAULT_SCENARIO
        )
        self.world = WorldConfig(
            guilds=args.guilds,
            members_per_guild=args.members,
            member_spread=0.5,
            large_guilds=min(2, args.guilds),
            large_guild_members=max(args.members * 5, 300),
            seed=args.seed,
        )
        self.faults: list[FaultRecord] = []
        self.started = 0.0
        self.ready_at: float | None = None
        self.readies = 0
        self.connects = 0
        self.resumes = 0
        self.pings = 0
        self.state_text = "starting"
        self.rates: collections.deque[tuple[float, int]] = collections.deque(maxlen=8)

    async def run(self) -> DemoSummary:
        args = self.args
        emulator = Emulator(
            self.world,
            heartbeat_interval_s=args.heartbeat,
            fault_close_delay_s=0.5,
            guild_stream_delay_s=0.0005,
        )
        async with emulator as emu:
            client = Client(
                emu.token,
                api_url=emu.api_url,
                intents=Intents.all(),
                ready_timeout_s=3.0,
                attempt_timeout_s=10.0,
                backoff=lambda: Backoff(base_s=0.5, cap_s=4.0),
            )
            bot = PingBot(client, slow_s=args.slow)
            client.subscribe(Connected, self._on_connected)
            client.subscribe(Disconnected, self._on_disconnected)
            client.subscribe(ev.Ready, self._on_ready)
            client.subscribe(ev.GuildUnavailable, self._on_outage)
            client.subscribe(ev.GuildAvailable, self._on_guild_back)
            self.started = time.monotonic()
            client.start()
            try:
                await self._drive(emu, client, bot)
            finally:
                await client.close()
            return self._summarise(emu, client, bot)

    async def _drive(self, emu: Emulator, client: Client, bot: PingBot) -> None:
        view = _LiveView(self, client, bot) if self.args.live else None
        if view is not None:
            view.start()
        try:
            async with asyncio.timeout(self.args.ready_timeout):
                await client.wait_until_ready()
            emu.start_activity(self.args.rate, seed=self.args.seed)
            talk = asyncio.create_task(self._talk(emu))
            try:
                await self._play(emu)
                remaining = self.args.duration - (time.monotonic() - self.ready_at_())
                if remaining > 0:
                    await asyncio.sleep(remaining)
            finally:
                talk.cancel()
                await emu.stop_activity()
            self.state_text = "settling"
            await self._settle(emu, client)
        finally:
            if view is not None:
                view.stop()

    def ready_at_(self) -> float:
        return self.ready_at if self.ready_at is not None else time.monotonic()

    async def _play(self, emu: Emulator) -> None:
        base = self.ready_at_()
        scale = self.args.time_scale
        for step in self.scenario.steps:
            at_s = step.at_s * scale
            if at_s > self.args.duration:
                break
            if "duration_s" in step.args:
                step = Step(
                    at_s=at_s,
                    action=step.action,
                    args={**step.args, "duration_s": step.args["duration_s"] * scale},
                )
            delay = base + at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            what = FAULT_NAMES.get(step.action, step.action)
            if step.action == "invalidate_session":
                resumable = bool(step.args.get("resumable", False))
                what = f"op 9 INVALID_SESSION ({str(resumable).lower()})"
            record = FaultRecord(
                at_s=time.monotonic() - self.started,
                action=step.action,
                what=what,
                _started=time.monotonic(),
            )
            if step.action in ("guild_outage", "send_message"):
                record.outcome = "in progress"
            self.faults.append(record)
            await emu.run_step(step)

    async def _talk(self, emu: Emulator) -> None:
        while True:
            await asyncio.sleep(self.args.ping_every)
            try:
                await emu.send_message(content="!ping", guild_index=0)
                self.pings += 1
            except Exception:
                logger.debug("could not post a ping", exc_info=True)

    async def _settle(self, emu: Emulator, client: Client) -> None:
        """Wait until the client is connected and has caught up with the server."""
        async with asyncio.timeout(30):
            while True:
                await asyncio.sleep(0.25)
                stats = client.stats
                if stats.inbox_size or stats.handlers_running:
                    continue
                if client.state.value != "connected":
                    continue
                sessions = [s for s in emu.sessions() if s.state.value == "active"]
                if sessions:
                    break
        await asyncio.sleep(0.5)
        slow = next((f for f in self.faults if f.action == "send_message"), None)
        if slow is not None and slow.outcome == "in progress":
            slow.outcome = (
                f"loop blocked {self.args.slow:.0f} s; session kept"
                if not any(
                    f._disconnected_at and f._disconnected_at >= slow._started
                    for f in self.faults
                )
                else "session lost"
            )

    # Lifecycle observers

    def _current_fault(self) -> FaultRecord | None:
        for record in reversed(self.faults):
            if record.action not in ("guild_outage", "send_message"):
                return record
        return None

    def _on_connected(self, event: Connected) -> None:
        self.connects += 1
        self.state_text = "connected (resumed)" if event.resumed else "connected"
        if event.resumed:
            self.resumes += 1
        now = time.monotonic()
        # Every fault still open is over: faults that came while the client was
        # away share this recovery.
        for record in self.faults:
            if record.outcome in ("pending", "recovering"):
                since = record._disconnected_at or record._started
                record.away_s = now - since
                record.resumed = event.resumed
                record.outcome = "resumed" if event.resumed else "re-identified"

    def _on_disconnected(self, event: Disconnected) -> None:
        self.state_text = "reconnecting" if event.will_reconnect else "disconnected"
        record = self._current_fault()
        if record is not None and record.outcome == "pending":
            record._disconnected_at = time.monotonic()
            record.outcome = "recovering"

    def _on_ready(self, event: ev.Ready) -> None:
        self.readies += 1
        if self.ready_at is None:
            self.ready_at = time.monotonic()

    def _on_outage(self, event: ev.GuildUnavailable) -> None:
        for record in reversed(self.faults):
            if record.action == "guild_outage" and record.outcome == "in progress":
                record._disconnected_at = time.monotonic()
                record.outcome = "guild unavailable, data kept"

    def _on_guild_back(self, event: ev.GuildAvailable) -> None:
        for record in reversed(self.faults):
            if record.action == "guild_outage" and record._disconnected_at:
                if record.away_s is None:
                    record.away_s = time.monotonic() - record._disconnected_at
                    record.outcome = "guild back, cache refreshed"
                return

    # Scores

    def _summarise(self, emu: Emulator, client: Client, bot: PingBot) -> DemoSummary:
        dispatched: set[tuple[str, int]] = set()
        abandoned = 0
        for session in emu.sessions():
            last_delivered = max(
                (seq for (sid, seq) in bot.received if sid == session.session_id),
                default=0,
            )
            for record in session.dispatches:
                if not record.replayable:
                    # RESUMED and fault payloads belong to one connection only.
                    continue
                key = (session.session_id, record.seq)
                if session.state.value != "active" and record.seq > last_delivered:
                    # The server ended this session after sending this dispatch
                    # and before the client could read it: Discord drops those
                    # too; no client can deliver them.
                    abandoned += 1
                    continue
                dispatched.add(key)
        delivered = set(bot.received)
        lost = len(dispatched - delivered)
        duplicated = sum(n - 1 for n in bot.received.values() if n > 1)
        counters = emu.counters
        summary = DemoSummary(
            guilds=self.world.guilds,
            members=sum(len(g.members) for g in emu.world.guilds.values()),
            time_to_ready_s=(
                None
                if self.ready_at is None
                else round(self.ready_at - self.started, 3)
            ),
            dispatched=len(dispatched),
            delivered=len(delivered & dispatched),
            lost=lost,
            duplicated=duplicated,
            abandoned_by_server=abandoned,
            events_by_type=dict(bot.by_type.most_common()),
            pings=self.pings,
            pings_received=bot.pings_seen,
            replies_sent=bot.replies,
            reconnects=max(0, self.connects - 1),
            resumes=counters.resumes,
            identifies=counters.identifies,
            faults=[
                {
                    "at_s": round(f.at_s, 2),
                    "fault": f.what,
                    "outcome": f.outcome,
                    "away_s": None if f.away_s is None else round(f.away_s, 3),
                }
                for f in self.faults
            ],
            duration_s=round(time.monotonic() - self.started, 2),
        )
        summary.ok = (
            lost == 0
            and duplicated == 0
            and self.ready_at is not None
            and bot.replies == bot.pings_seen
        )
        return summary


class _LiveView:
    """The live terminal view (rich), refreshed a few times a second."""

    def __init__(self, demo: Demo, client: Client, bot: PingBot) -> None:
        from rich.console import Console
        from rich.live import Live

        self.demo = demo
        self.client = client
        self.bot = bot
        self._last = (time.monotonic(), 0)
        self.console = Console(stderr=False)
        self.live = Live(
            self.render(), console=self.console, refresh_per_second=4, transient=False
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.live.start()
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.live.update(self.render())
        self.live.stop()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.live.update(self.render())

    def render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        client, demo, bot = self.client, self.demo, self.bot
        counts = client.cache.counts()
        total_guilds = counts.guilds
        available = counts.guilds - counts.unavailable_guilds
        now = time.monotonic()
        events = sum(bot.by_type.values())
        then, before = self._last
        rate = (events - before) / (now - then) if now > then else 0.0
        if now - then >= 1.0:
            self._last = (now, events)
            demo.rates.append((now, int(rate)))
        shown_rate = demo.rates[-1][1] if demo.rates else int(rate)
        latency = client.latency

        status = Table.grid(padding=(0, 2))
        status.add_column(style="bold")
        status.add_column()
        status.add_row("connection", demo.state_text)
        status.add_row(
            "latency", "-" if latency is None else f"{latency * 1000:.1f} ms"
        )
        status.add_row("guilds cached", f"{available} / {total_guilds} available")
        status.add_row("members cached", f"{counts.members:,}")
        status.add_row("events / s", f"{shown_rate:,}")
        status.add_row("events handled", f"{events:,}")
        status.add_row("pings / replies", f"{demo.pings} / {bot.replies}")
        status.add_row("inbox", f"{client.stats.inbox_size} waiting")
        bar = ProgressBar(total=max(total_guilds, 1), completed=available, width=40)
        stream = Table.grid()
        stream.add_row("guild stream ", bar, f" {available}/{total_guilds}")

        faults = Table(title="faults", expand=True)
        faults.add_column("t (s)", justify="right")
        faults.add_column("fault")
        faults.add_column("outcome")
        faults.add_column("away", justify="right")
        for record in demo.faults:
            away = "" if record.away_s is None else f"{record.away_s:.2f} s"
            faults.add_row(f"{record.at_s:.1f}", record.what, record.outcome, away)
        return Group(
            Panel(Group(status, stream), title="tether demo: ping bot vs emulator"),
            faults,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tether demo",
        description=(
            "Run a ping bot on tether against the embedded Discord emulator, play a "
            "fault timeline, and check that every event reached the bot exactly once."
        ),
    )
    parser.add_argument("--guilds", type=int, default=300, help="guilds in the world")
    parser.add_argument(
        "--members", type=int, default=100, help="average members per guild"
    )
    parser.add_argument(
        "--duration", type=float, default=55.0, help="seconds to run after Ready"
    )
    parser.add_argument(
        "--scenario", help="a scenario JSON file (see docs/emulator.md)"
    )
    parser.add_argument(
        "--rate", type=float, default=150.0, help="emulated activity events per second"
    )
    parser.add_argument(
        "--ping-every", type=float, default=2.0, help="seconds between !ping messages"
    )
    parser.add_argument(
        "--heartbeat", type=float, default=2.0, help="the emulator's heartbeat (s)"
    )
    parser.add_argument(
        "--slow", type=float, default=5.0, help="seconds the !slow handler blocks"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply the scenario's times by this (0.5 plays it twice as fast)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ready-timeout", type=float, default=120.0, help="give up waiting for Ready"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON, no live view"
    )
    parser.add_argument("--no-live", action="store_true", help="no live view")
    parser.add_argument("--verbose", action="store_true", help="log at INFO")
    return parser


def run_demo(argv: Sequence[str] | None = None) -> DemoSummary:
    """Run the demo with command-line style arguments; return its summary."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    args.live = not (args.json or args.no_live) and sys.stdout.isatty()
    return asyncio.run(Demo(args).run())


def _print_summary(summary: DemoSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("world", f"{summary.guilds} guilds, {summary.members:,} members"),
        ("time to Ready", f"{summary.time_to_ready_s} s"),
        ("dispatched by the emulator", f"{summary.dispatched:,}"),
        ("delivered to handlers", f"{summary.delivered:,}"),
        ("lost", str(summary.lost)),
        ("duplicated", str(summary.duplicated)),
        (
            "ended with their session",
            f"{summary.abandoned_by_server} (sent as the server killed the session)",
        ),
        (
            "pings sent / received / answered",
            f"{summary.pings} / {summary.pings_received} / {summary.replies_sent}",
        ),
        (
            "sessions",
            f"{summary.identifies} identified (the first included), "
            f"{summary.resumes} resumed, over {summary.reconnects} reconnects",
        ),
        ("result", "OK: nothing lost, nothing twice" if summary.ok else "FAILED"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for fault in summary.faults:
        away = "" if fault["away_s"] is None else f", away {fault['away_s']:.2f} s"
        console.print(
            f"  {fault['at_s']:6.1f} s  {fault['fault']}: {fault['outcome']}{away}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """``tether demo``: returns 0 when nothing was lost or duplicated."""
    args = list(argv) if argv is not None else sys.argv[1:]
    verbose = "--verbose" in args
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    summary = run_demo(args)
    if "--json" in args:
        print(json.dumps(asdict(summary), indent=2))
    else:
        _print_summary(summary)
    return 0 if summary.ok else 1

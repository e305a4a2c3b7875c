"""The markdown report and the plots of one run, from its ``results.json`` data."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

__all__ = ["Summary", "summarize", "write"]

logger = logging.getLogger(__name__)

_MIB: Final[float] = 1024.0 * 1024.0
_PEERS: Final[tuple[str, ...]] = ("discord.py", "hikari")


class Summary:
    """Median, min and max of one metric over a cell's repetitions."""

    def __init__(self, values: Iterable[float | None]) -> None:
        kept = [v for v in values if v is not None]
        self.n = len(kept)
        self.median = statistics.median(kept) if kept else None
        self.low = min(kept) if kept else None
        self.high = max(kept) if kept else None

    def text(self, scale: float = 1.0, digits: int = 1) -> str:
        """``median [min-max]``, scaled, or ``n/a``."""
        if self.median is None or self.low is None or self.high is None:
            return "n/a"
        median = f"{self.median * scale:,.{digits}f}"
        if self.n < 2:
            return median
        low = f"{self.low * scale:,.{digits}f}"
        high = f"{self.high * scale:,.{digits}f}"
        return f"{median} [{low}–{high}]"


def _ok(records: list[dict[str, Any]], workload: str) -> list[dict[str, Any]]:
    return [r for r in records if r["workload"] == workload and "error" not in r]


def summarize(
    records: list[dict[str, Any]],
    workload: str,
    metric: str,
    **keys: Any,
) -> Summary:
    """Summarize ``metric`` over the records of one cell."""
    cell = [
        r for r in _ok(records, workload) if all(r.get(k) == v for k, v in keys.items())
    ]
    return Summary(r.get(metric) for r in cell)


def _ratio(tether: Summary, peer: Summary) -> str:
    if tether.median is None or peer.median is None or peer.median == 0:
        return "n/a"
    return f"{tether.median / peer.median:.2f}"


def _row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _libraries(results: dict[str, Any]) -> list[str]:
    return list(results["libraries"])


# Sections


def _startup(results: dict[str, Any]) -> list[str]:
    records = results["records"]
    sizes = sorted(
        {(r["guilds"], r["members"]) for r in _ok(records, "startup") if r["guilds"]}
    )
    if not sizes:
        return []
    libs = _libraries(results)
    empty = {
        lib: summarize(records, "startup", "rss", lib=lib, guilds=0) for lib in libs
    }
    rows = []
    for guilds, members in sizes:
        per_lib: dict[str, dict[str, Summary]] = {}
        for lib in libs:
            keys = {"lib": lib, "guilds": guilds, "members": members}
            rss = summarize(records, "startup", "rss", **keys)
            base = empty[lib].median
            per_member = Summary(
                [
                    (r["rss"] - base) / members
                    for r in _ok(records, "startup")
                    if r["lib"] == lib
                    and (r["guilds"], r["members"]) == (guilds, members)
                    and base is not None
                ]
            )
            per_lib[lib] = {
                "ready": summarize(records, "startup", "ready_s", **keys),
                "cpu": summarize(records, "startup", "cpu_s", **keys),
                "peak": summarize(records, "startup", "peak_rss", **keys),
                "rss": rss,
                "per_member": per_member,
            }
        for lib in libs:
            cell = per_lib[lib]
            ratios = ""
            if lib != "tether" and "tether" in per_lib:
                mine = per_lib["tether"]
                ratios = " / ".join(
                    _ratio(mine[m], cell[m]) for m in ("ready", "cpu", "per_member")
                )
            rows.append(
                [
                    f"{guilds:,} × {members // guilds:,}",
                    lib,
                    cell["ready"].text(digits=2),
                    cell["cpu"].text(digits=2),
                    cell["peak"].text(1 / _MIB, 0),
                    cell["per_member"].text(digits=0),
                    ratios,
                ]
            )
    header = [
        "guilds × members",
        "library",
        "time to ready (s)",
        "CPU (s)",
        "peak RSS (MiB)",
        "bytes / member",
        "tether / lib (ready / CPU / bytes)",
    ]
    return [
        "## Startup",
        "",
        "Time and CPU from start until every guild is available; bytes per member"
        " = (RSS with the world cached − RSS with an empty world) / members.",
        "",
        *_table(header, rows),
        "",
    ]


def _floor(results: dict[str, Any]) -> dict[str | None, Summary]:
    records = results["records"]
    return {
        c: summarize(records, "floor", "cpu_us", compress=c)
        for c in (None, "zlib-stream", "zstd-stream")
    }


def _flood(results: dict[str, Any]) -> list[str]:
    records = results["records"]
    cells = sorted(
        {
            (r["compress"] or "", r["lib"], r["io_thread"])
            for r in _ok(records, "flood")
        },
        key=lambda c: (c[0], c[1] != "tether", c[1], not c[2]),
    )
    if not cells:
        return []
    floor = _floor(results)
    rows = []
    for compress_text, lib, io_thread in cells:
        compress = compress_text or None
        keys = {"lib": lib, "compress": compress, "io_thread": io_thread}
        cpu = summarize(records, "flood", "cpu_us", **keys)
        rate = summarize(records, "flood", "events_per_s", **keys)
        versus = ""
        if lib != "tether":
            mine = summarize(
                records,
                "flood",
                "cpu_us",
                lib="tether",
                compress=compress,
                io_thread=True,
            )
            versus = _ratio(mine, cpu)
        name = lib if io_thread or lib != "tether" else "tether (io_thread=False)"
        rows.append(
            [
                compress_text or "none",
                name,
                cpu.text(digits=1),
                rate.text(digits=0),
                versus,
                _ratio(cpu, floor[compress]),
            ]
        )
    header = [
        "compression",
        "library",
        "CPU µs / event",
        "events / s",
        "tether / lib (CPU)",
        "lib / floor (CPU)",
    ]
    return [
        "## Message flood",
        "",
        f"{results['plan']['flood_n']:,} MESSAGE_CREATEs (about 1.5 KB each) queued"
        " at once; CPU of the library's process per event, and events per second"
        " from the first to the last handled.",
        "",
        *_table(header, rows),
        "",
    ]


def _floor_section(results: dict[str, Any]) -> list[str]:
    records = results["records"]
    rows = []
    for compress in (None, "zlib-stream", "zstd-stream"):
        keys = {"compress": compress}
        if not summarize(records, "floor", "cpu_us", **keys).n:
            continue
        rows.append(
            [
                compress or "none",
                summarize(records, "floor", "cpu_us_orjson", **keys).text(digits=2),
                summarize(records, "floor", "cpu_us_msgspec", **keys).text(digits=2),
                summarize(records, "floor", "frame_bytes", **keys).text(digits=0),
            ]
        )
    if not rows:
        return []
    header = ["compression", "orjson µs / frame", "msgspec µs / frame", "bytes / frame"]
    return [
        "## The floor",
        "",
        "The flood's frames inflated and parsed in a tight loop, nothing else.",
        "",
        *_table(header, rows),
        "",
    ]


def _churn(results: dict[str, Any]) -> list[str]:
    records = results["records"]
    libs = _libraries(results)
    rows = []
    for lib in libs:
        cpu = summarize(records, "churn", "cpu_us", lib=lib)
        if not cpu.n:
            continue
        cell = [r for r in _ok(records, "churn") if r["lib"] == lib]
        first = Summary((r["rss_round1"] - r["rss_cached"]) / _MIB for r in cell)
        second = Summary((r["rss_round2"] - r["rss_round1"]) / _MIB for r in cell)
        lost = sum(r["sent"] - r["received"] for r in cell)
        versus = ""
        if lib != "tether":
            versus = _ratio(summarize(records, "churn", "cpu_us", lib="tether"), cpu)
        rows.append(
            [
                lib,
                cpu.text(digits=1),
                first.text(digits=1),
                second.text(digits=1),
                str(lost),
                versus,
            ]
        )
    if not rows:
        return []
    world = results["plan"]["churn_world"]
    header = [
        "library",
        "CPU µs / event",
        "RSS growth round 1 (MiB)",
        "RSS growth round 2 (MiB)",
        "events not seen",
        "tether / lib (CPU)",
    ]
    return [
        "## Member churn",
        "",
        f"Two rounds of {results['plan']['churn_n']:,} presence and member updates"
        f" against {world[0]:,} cached guilds of {world[1]:,} members; flat memory"
        " means round 2 adds about nothing.",
        "",
        *_table(header, rows),
        "",
    ]


def _storm(results: dict[str, Any]) -> list[str]:
    records = results["records"]
    rows = []
    for lib in _libraries(results):
        cell = [r for r in _ok(records, "storm") if r["lib"] == lib]
        if not cell:
            continue
        resumes = sum(r["resumes"] for r in cell)
        identifies = sum(r["identifies"] for r in cell)
        rows.append(
            [
                lib,
                " / ".join(str(r["drops"]) for r in cell),
                Summary(r["away_ms_median"] for r in cell).text(digits=0),
                Summary(r["away_ms_max"] for r in cell).text(digits=0),
                str(sum(r["missing"] for r in cell)),
                str(sum(r["duplicated"] for r in cell)),
                f"{resumes} / {identifies}",
            ]
        )
    if not rows:
        return []
    plan = results["plan"]
    header = [
        "library",
        "drops done (per run)",
        "time away, median (ms)",
        "time away, worst (ms)",
        "lost",
        "duplicated",
        "resumes / identifies",
    ]
    return [
        "## Reconnect storm",
        "",
        f"Up to {plan['storm_drops']} drops (TCP cut, no close frame) during"
        f" {plan['storm_rate_per_s']:.0f} messages/s; each drop waits for the"
        " session to be back, then 50 ms of traffic. A run stops after"
        f" {plan['storm_budget_s']:.0f} s. Time away: from the drop to the server"
        " accepting RESUME (or IDENTIFY).",
        "",
        *_table(header, rows),
        "",
    ]


def _micro(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    websocket = results.get("websocket")
    if websocket:
        rows = [
            [name, f"{v['cpu_us']:.2f}", f"{v['frames_per_s'] or 0:,.0f}"]
            for name, v in websocket.items()
            if name != "missing"
        ]
        lines += [
            "## Websocket libraries",
            "",
            "A bare client reading the flood's frames (uncompressed) from a local"
            " aiohttp server.",
            "",
            *_table(["library", "CPU µs / frame", "frames / s"], rows),
            "",
        ]
    decoders = results.get("json")
    if decoders:
        rows = [
            [name, f"{value:.2f}"]
            for name, value in decoders.items()
            if name != "missing"
        ]
        lines += [
            "## JSON decoders",
            "",
            *_table(["decoder", "CPU µs / MESSAGE_CREATE"], rows),
            "",
        ]
    models = results.get("cache_models")
    if models:
        rows = [
            [name, f"{value:,.0f}"]
            for name, value in models.items()
            if name not in ("missing", "members")
        ]
        lines += [
            "## Cache model",
            "",
            f"Bytes per member for {models['members']:,} GUILD_MEMBER_UPDATE"
            " payloads held three ways (tracemalloc).",
            "",
            *_table(["representation", "bytes / member"], rows),
            "",
        ]
    script = results.get("cache_script")
    if script:
        lines += [
            "`bench/cache_memory.py` (tether's cache):",
            "",
            "```",
            script,
            "```",
            "",
        ]
    profile = results.get("profile")
    if profile:
        rows = [
            [
                f"`{row['function']}`",
                f"{row['calls_per_event']:.2f}",
                f"{row['own_us']:.2f}",
                f"{row['cumulative_us']:.2f}",
            ]
            for row in profile
        ]
        lines += [
            "## Profile of tether on the flood",
            "",
            "cProfile, zlib-stream, io_thread=False (one thread), per event; wall"
            " time, so the epoll row is time spent waiting for frames.",
            "",
            *_table(["function", "calls / event", "own µs", "cumulative µs"], rows),
            "",
        ]
    return lines


def _machine(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    return [
        f"Run {results['started']} in {results['duration_s'] / 60:.1f} min on"
        f" {machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']},"
        f" {machine['platform']}; {packages}. Repetitions per cell:"
        f" {results['plan']['reps']}; cells show the median [min–max].",
        "",
    ]


def _errors(results: dict[str, Any]) -> list[str]:
    failed = [r for r in results["records"] if "error" in r]
    if not failed:
        return []
    lines = ["## Failed runs", ""]
    for record in failed:
        keys = {k: v for k, v in record.items() if k not in ("error", "wall_s")}
        lines.append(f"- {keys}: {record['error']}")
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    sections: list[Callable[[dict[str, Any]], list[str]]] = [
        _machine,
        _startup,
        _flood,
        _floor_section,
        _churn,
        _storm,
        _micro,
        _errors,
    ]
    lines = ["# tether benchmark report", ""]
    for section in sections:
        lines += section(results)
    return "\n".join(lines)


# Plots


def _plot(results: dict[str, Any], folder: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: no plots")
        return []
    records = results["records"]
    written = []
    startup = [r for r in _ok(records, "startup") if r["guilds"]]
    if startup:
        figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        metrics = (
            ("ready_s", "time to ready (s)", 1.0),
            ("cpu_s", "CPU to ready (s)", 1.0),
            ("rss", "RSS when ready (MiB)", 1 / _MIB),
        )
        for axis, (metric, title, scale) in zip(axes, metrics, strict=True):
            for lib in _libraries(results):
                points = sorted({r["members"] for r in startup if r["lib"] == lib})
                ys = [
                    summarize(records, "startup", metric, lib=lib, members=m).median
                    for m in points
                ]
                axis.plot(
                    points,
                    [None if y is None else y * scale for y in ys],
                    marker="o",
                    label=lib,
                )
            axis.set_xscale("log")
            axis.set_xlabel("cached members")
            axis.set_title(title)
            axis.grid(True, alpha=0.3)
        axes[0].legend()
        figure.tight_layout()
        path = folder / "startup.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    flood = _ok(records, "flood")
    if flood:
        floor = _floor(results)
        labels: list[str] = []
        values: list[float] = []
        colours: list[str] = []
        palette = {"tether": "C0", "discord.py": "C1", "hikari": "C2", "floor": "C7"}
        for compress in (None, "zlib-stream", "zstd-stream"):
            for lib in _libraries(results):
                cpu = summarize(
                    records,
                    "flood",
                    "cpu_us",
                    lib=lib,
                    compress=compress,
                    io_thread=True,
                )
                if cpu.median is not None:
                    labels.append(f"{lib}\n{compress or 'none'}")
                    values.append(cpu.median)
                    colours.append(palette.get(lib, "C3"))
            if floor[compress].median is not None:
                labels.append(f"floor\n{compress or 'none'}")
                values.append(floor[compress].median or 0.0)
                colours.append(palette["floor"])
        figure, axis = plt.subplots(figsize=(max(6, len(labels) * 1.1), 4.5))
        axis.bar(range(len(values)), values, color=colours)
        axis.set_xticks(range(len(labels)), labels, fontsize=8)
        axis.set_ylabel("CPU µs per MESSAGE_CREATE")
        axis.set_title("Message flood: CPU per event (median)")
        axis.grid(True, axis="y", alpha=0.3)
        figure.tight_layout()
        path = folder / "flood.png"
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written


def write(results: dict[str, Any], folder: Path) -> None:
    """Write ``report.md`` and the plots into ``folder``."""
    plots = _plot(results, folder)
    text = markdown(results)
    if plots:
        text += "\n## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots)
    (folder / "report.md").write_text(text + "\n")

"""The control endpoint: drive a running emulator from another process.

A small JSON API on 127.0.0.1 (``Emulator.control_url``):

- ``GET /status``: URLs, counters, world summary, session summaries, actions.
- ``GET /sessions``: session summaries; ``GET /sessions/{id}``: one session with
  its dispatches (``?data=1`` adds their data) and frames.
- ``GET /connections``: connection summaries.
- ``GET /rest-log``: REST requests answered.
- ``POST /step``: run one step now, body ``{"action": ..., <args>}``.
- ``POST /scenario``: play a scenario in the background, body as
  :meth:`Scenario.from_json`.

POST bodies must be ``application/json``, which browsers cannot send to another
origin without asking first. No answer contains the token.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from tether.emulator.records import SessionInfo
from tether.emulator.scenario import ACTIONS, Scenario, Step

if TYPE_CHECKING:
    from tether.emulator.emulator import Emulator

__all__ = ["Control"]

logger = logging.getLogger(__name__)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


def _default(value: Any) -> Any:
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__}")


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


def _session_summary(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "shard": list(info.shard) if info.shard else None,
        "intents": info.intents,
        "state": info.state.value,
        "end_reason": info.end_reason,
        "seq": info.seq,
        "dispatches": len(info.dispatches),
        "connections": list(info.connections),
        "resumes": info.resumes,
        "heartbeats": info.heartbeats,
    }


class Control:
    """Serves the control endpoint of one emulator."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_get("/", self._status)
        app.router.add_get("/status", self._status)
        app.router.add_get("/sessions", self._sessions)
        app.router.add_get("/sessions/{session_id}", self._session)
        app.router.add_get("/connections", self._connections)
        app.router.add_get("/rest-log", self._rest_log)
        app.router.add_post("/step", self._step)
        app.router.add_post("/scenario", self._scenario)
        return app

    async def _status(self, request: web.Request) -> web.Response:
        emu = self._emulator
        body = {
            "api_url": emu.api_url,
            "gateway_url": emu.gateway_url,
            "resume_url": emu.resume_url,
            "control_url": emu.control_url,
            "counters": dataclasses.asdict(emu.counters),
            "world": emu.world.summary(),
            "sessions": [_session_summary(info) for info in emu.sessions()],
            "actions": sorted(ACTIONS),
        }
        return _json(body)

    async def _sessions(self, request: web.Request) -> web.Response:
        return _json([_session_summary(info) for info in self._emulator.sessions()])

    async def _session(self, request: web.Request) -> web.Response:
        try:
            info = self._emulator.session(request.match_info["session_id"])
        except KeyError:
            return _json({"error": "unknown session"}, status=404)
        with_data = request.query.get("data") == "1"
        body = _session_summary(info)
        body["dispatch_records"] = [
            {"seq": r.seq, "name": r.name, "time": r.time}
            | ({"data": r.data} if with_data else {})
            for r in info.dispatches
        ]
        body["frames"] = [dataclasses.asdict(frame) for frame in info.frames]
        return _json(body)

    async def _connections(self, request: web.Request) -> web.Response:
        body = []
        for info in self._emulator.connections():
            summary = dataclasses.asdict(info)
            summary["frames"] = len(info.frames)
            body.append(summary)
        return _json(body)

    async def _rest_log(self, request: web.Request) -> web.Response:
        return _json([dataclasses.asdict(r) for r in self._emulator.rest_log])

    async def _read_json(self, request: web.Request) -> Any:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send application/json")
        try:
            return orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise web.HTTPBadRequest(text=f"invalid JSON: {exc}") from exc

    async def _step(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        try:
            step = Step.from_dict(data)
            result = await self._emulator.run_step(step)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return _json({"ok": False, "error": str(exc)}, status=400)
        if isinstance(result, dict):
            result = {"id": result.get("id")}
        elif not isinstance(result, int | float | str | bool | type(None)):
            result = None
        return _json({"ok": True, "result": result})

    async def _scenario(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        try:
            scenario = Scenario.from_json(data)
        except ValueError as exc:
            return _json({"ok": False, "error": str(exc)}, status=400)
        task = self._emulator.play_in_background(scenario)
        task.add_done_callback(_log_failure)
        return _json({"ok": True, "steps": len(scenario.steps)})


def _log_failure(task: Any) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("scenario failed: %s", task.exception())

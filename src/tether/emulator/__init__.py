"""A local Discord: REST and gateway on 127.0.0.1, a synthetic world, scripted faults.

Example::

    from tether.emulator import Emulator, WorldConfig

    async with Emulator(world=WorldConfig(guilds=50, members_per_guild=100)) as emu:
        print(emu.api_url, emu.gateway_url)

See ``docs/emulator.md`` for the world options, the faults, the scenario format and
the control endpoint.
"""

from __future__ import annotations

from tether.emulator._events import WorldEvents
from tether.emulator.activity import ACTIVITY_KINDS
from tether.emulator.desktop import DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_ID, DesktopApp
from tether.emulator.emulator import Emulator
from tether.emulator.gateway import GatewaySettings
from tether.emulator.records import (
    ConnectionInfo,
    Counters,
    DispatchRecord,
    FrameRecord,
    IdentifyRecord,
    RestRecord,
    SessionInfo,
    SessionState,
)
from tether.emulator.rest import RestSettings
from tether.emulator.scenario import ACTIONS, Scenario, Step
from tether.emulator.world import World, WorldConfig

__all__ = [
    "DEFAULT_ACCESS_TOKEN",
    "DEFAULT_CLIENT_ID",
    "DesktopApp",
    "ACTIONS",
    "ACTIVITY_KINDS",
    "ConnectionInfo",
    "Counters",
    "DispatchRecord",
    "Emulator",
    "FrameRecord",
    "GatewaySettings",
    "IdentifyRecord",
    "RestRecord",
    "RestSettings",
    "Scenario",
    "SessionInfo",
    "SessionState",
    "Step",
    "World",
    "WorldConfig",
    "WorldEvents",
]

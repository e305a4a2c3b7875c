"""Bytes per cached guild, member, user and presence, measured with tracemalloc.

Builds a benchmark world (by default 100,000 members across 500 guilds) from
Discord-shaped GUILD_CREATE payloads that go through JSON and orjson, as on the wire,
feeds them to a :class:`tether.cache.Cache` one guild at a time, and reports what the
cache holds once the payloads and events are gone. Run::

    .venv/bin/python bench/cache_memory.py [--guilds 500] [--members 100000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson

from tether import models
from tether.cache import Cache, CacheConfig, MemberCachePolicy
from tether.events import ReadyData, parse_dispatch

Payload = dict[str, Any]

CHANNELS_PER_GUILD = 20
ROLES_PER_GUILD = 15
EMOJIS_PER_GUILD = 10


class World:
    """Generates the same guild payloads every time for a given seed."""

    def __init__(self, guilds: int, members: int, user_pool: int, seed: int) -> None:
        self.guild_count = guilds
        self.members_per_guild = members // guilds
        self.user_pool = user_pool
        self.seed = seed
        self.first_id = 400_000_000_000_000_000

    def snowflake(self, n: int) -> str:
        return str(self.first_id + (n << 22))

    def guild_ids(self) -> list[str]:
        return [self.snowflake(i) for i in range(self.guild_count)]

    def user(self, rng: random.Random, n: int) -> Payload:
        # A user's fields depend on the user alone, so shared users are equal.
        own = random.Random(n)
        return {
            "id": self.snowflake(10_000_000 + n),
            "username": f"user_{n:x}{own.randrange(1000)}",
            "discriminator": "0",
            "global_name": f"Name {n}" if own.random() < 0.5 else None,
            "avatar": f"{own.getrandbits(128):032x}" if own.random() < 0.7 else None,
            "public_flags": 0,
        }

    def guilds(self) -> Iterator[bytes]:
        rng = random.Random(self.seed)
        next_id = 1_000_000
        for index in range(self.guild_count):
            guild_id = self.snowflake(index)
            roles: list[Payload] = []
            for _ in range(ROLES_PER_GUILD):
                next_id += 1
                roles.append(
                    {
                        "id": self.snowflake(next_id),
                        "name": f"role {next_id}",
                        "color": rng.randrange(1 << 24),
                        "hoist": False,
                        "position": len(roles),
                        "permissions": "1071698660929",
                        "managed": False,
                        "mentionable": False,
                        "flags": 0,
                    }
                )
            channels: list[Payload] = []
            for position in range(CHANNELS_PER_GUILD):
                next_id += 1
                channels.append(
                    {
                        "id": self.snowflake(next_id),
                        "type": 2 if position % 5 == 4 else 0,
                        "name": f"channel-{position}",
                        "position": position,
                        "permission_overwrites": [
                            {
                                "id": roles[0]["id"],
                                "type": 0,
                                "allow": "0",
                                "deny": "1024",
                            }
                        ],
                        "topic": None,
                        "nsfw": False,
                        "rate_limit_per_user": 0,
                    }
                )
            emojis: list[Payload] = []
            for _ in range(EMOJIS_PER_GUILD):
                next_id += 1
                emojis.append(
                    {"id": self.snowflake(next_id), "name": f"e{next_id}", "roles": []}
                )
            members: list[Payload] = []
            picked = rng.sample(range(self.user_pool), self.members_per_guild)
            for n in picked:
                role_ids = [r["id"] for r in rng.sample(roles[1:], rng.randrange(4))]
                members.append(
                    {
                        "user": self.user(rng, n),
                        "nick": f"nick{n}" if rng.random() < 0.1 else None,
                        "avatar": None,
                        "roles": role_ids,
                        "joined_at": f"2021-05-01T12:{rng.randrange(60):02d}:"
                        f"{rng.randrange(60):02d}.000000+00:00",
                        "premium_since": None,
                        "deaf": False,
                        "mute": False,
                        "flags": 0,
                        "pending": False,
                    }
                )
            presences = [
                {
                    "user": {"id": m["user"]["id"]},
                    "status": rng.choice(["online", "idle", "dnd"]),
                    "activities": [],
                    "client_status": {"desktop": "online"},
                }
                for m in members
            ]
            yield orjson.dumps(
                {
                    "id": guild_id,
                    "name": f"guild {index}",
                    "icon": f"{rng.getrandbits(128):032x}",
                    "owner_id": members[0]["user"]["id"],
                    "afk_timeout": 300,
                    "verification_level": 1,
                    "features": ["COMMUNITY", "NEWS", "INVITE_SPLASH"],
                    "preferred_locale": "en-US",
                    "joined_at": "2021-05-01T12:00:00.000000+00:00",
                    "large": False,
                    "member_count": len(members),
                    "roles": roles,
                    "emojis": emojis,
                    "channels": channels,
                    "threads": [],
                    "members": members,
                    "presences": presences,
                    "voice_states": [],
                }
            )


def reset_shared_values() -> None:
    """Start each measurement with empty sharing tables, so each pays for its own."""
    models._shared_ids.clear()
    models._shared_tuples.clear()
    models._shared_statuses.clear()


def measure(world: World, config: CacheConfig) -> tuple[int, Cache, float]:
    """Return the bytes the cache holds after the world streamed in, and the time."""
    reset_shared_values()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()

    cache = Cache(config)
    ready = {
        "user": {"id": "1", "username": "bench", "bot": True},
        "guilds": [{"id": gid, "unavailable": True} for gid in world.guild_ids()],
        "session_id": "bench",
    }
    cache.begin_session(ReadyData.from_payload(ready))
    for frame in world.guilds():
        event = cache.resolve(parse_dispatch("GUILD_CREATE", orjson.loads(frame)))
        cache.apply(event)
        del event

    elapsed = time.perf_counter() - started
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used, cache, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guilds", type=int, default=500)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    members_per_guild = args.members // args.guilds

    def world(user_pool: int) -> World:
        return World(args.guilds, args.members, user_pool, args.seed)

    # Every member a different user, unless the pool is smaller than the members.
    unique = world(args.members)
    no_members = CacheConfig(members=MemberCachePolicy.NONE, presences=False)
    guilds_only, _, _ = measure(unique, no_members)
    with_members, cache, seconds = measure(unique, CacheConfig(presences=False))
    with_presences, _, _ = measure(unique, CacheConfig())
    counts = cache.counts()

    # The same number of memberships, each user in two guilds on average.
    shared_world = world(max(args.members // 2, members_per_guild))
    shared, shared_cache, _ = measure(shared_world, CacheConfig(presences=False))
    shared_counts = shared_cache.counts()
    shared_members = shared - guilds_only

    member_bytes = (with_members - guilds_only) / counts.members
    print(
        f"world: {args.guilds} guilds, {counts.members} members "
        f"({CHANNELS_PER_GUILD} channels, {ROLES_PER_GUILD} roles, "
        f"{EMOJIS_PER_GUILD} emojis per guild)"
    )
    print(
        f"per guild (channels, roles, emojis; no members): "
        f"{guilds_only / counts.guilds:,.0f} B"
    )
    print(
        f"per member, every member a distinct user (member + user): "
        f"{member_bytes:,.0f} B"
    )
    print(
        f"per member, {shared_counts.users} users in {shared_counts.members} "
        f"memberships: {shared_members / shared_counts.members:,.0f} B"
    )
    print(f"per presence: {(with_presences - with_members) / counts.members:,.0f} B")
    print(
        f"total, members without presences: {with_members / 2**20:,.1f} MiB; "
        f"parse + apply took {seconds:.2f} s "
        f"({counts.members / seconds:,.0f} members/s, under tracemalloc)"
    )


if __name__ == "__main__":
    main()

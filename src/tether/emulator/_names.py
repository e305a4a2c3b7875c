"""Word lists the synthetic world draws names and chatter from."""

from __future__ import annotations

from typing import Final

ADJECTIVES: Final[tuple[str, ...]] = (
    "amber", "brisk", "calm", "dapper", "eager", "fuzzy", "gentle", "hollow",
    "icy", "jolly", "keen", "lucky", "mellow", "nimble", "odd", "plucky",
    "quiet", "rusty", "sunny", "tidy", "urban", "vivid", "witty", "young",
    "zesty", "bold", "cosmic", "dusty", "electric", "frosty", "golden", "hasty",
)  # fmt: skip

ANIMALS: Final[tuple[str, ...]] = (
    "otter", "falcon", "badger", "lynx", "heron", "marmot", "gecko", "walrus",
    "panda", "raven", "moose", "newt", "koala", "ferret", "bison", "quokka",
    "yak", "orca", "puffin", "tapir", "ibex", "jackal", "lemur", "mantis",
)  # fmt: skip

GUILD_WORDS: Final[tuple[str, ...]] = (
    "Harbor", "Lantern", "Orbit", "Meadow", "Forge", "Signal", "Atlas", "Pixel",
    "Summit", "Tide", "Circuit", "Garden", "Echo", "Voyage", "Ember", "Prism",
)  # fmt: skip

GUILD_KINDS: Final[tuple[str, ...]] = (
    "Club", "Collective", "Hangout", "Guild", "Lab", "Society", "Crew", "Den",
    "Workshop", "Community",
)  # fmt: skip

TEXT_CHANNELS: Final[tuple[str, ...]] = (
    "general", "off-topic", "announcements", "help", "showcase", "memes",
    "music", "dev", "art", "gaming", "introductions", "bot-commands", "links",
    "feedback", "events", "random",
)  # fmt: skip

VOICE_CHANNELS: Final[tuple[str, ...]] = (
    "Lounge", "Gaming", "Study Room", "Music", "AFK", "Meeting", "Stage Left",
)  # fmt: skip

CATEGORIES: Final[tuple[str, ...]] = (
    "Information", "Text Channels", "Voice Channels", "Projects", "Archive",
)  # fmt: skip

ROLES: Final[tuple[str, ...]] = (
    "Moderator", "Member", "Verified", "Booster", "Artist", "Developer",
    "Event Host", "Veteran", "Newcomer", "Helper", "DJ", "Streamer",
)  # fmt: skip

EMOJIS: Final[tuple[str, ...]] = (
    "pepehands", "blobwave", "partyparrot", "kekw", "catjam", "thonk",
    "pog", "sadge", "hypers", "monkas",
)  # fmt: skip

GAMES: Final[tuple[str, ...]] = (
    "Minecraft", "Stardew Valley", "Factorio", "Celeste", "Hades", "Terraria",
    "Rocket League", "Chess", "Tetris Effect", "Outer Wilds",
)  # fmt: skip

WORDS: Final[tuple[str, ...]] = (
    "hello", "anyone", "tried", "the", "new", "build", "it", "works", "for",
    "me", "now", "thanks", "lol", "nice", "that", "looks", "great", "when",
    "is", "next", "event", "i", "think", "so", "maybe", "tomorrow", "what",
    "about", "you", "ok", "sounds", "good", "see", "later", "agreed", "yes",
    "no", "wow", "patch", "server", "bot", "update", "deploy", "coffee",
)  # fmt: skip

UNICODE_EMOJIS: Final[tuple[str, ...]] = (
    "\N{THUMBS UP SIGN}", "\N{HEAVY BLACK HEART}", "\N{FACE WITH TEARS OF JOY}",
    "\N{PARTY POPPER}", "\N{EYES}", "\N{FIRE}", "\N{WHITE HEAVY CHECK MARK}",
)  # fmt: skip

"""Where the client looks for the app: the platform's directory, indexes 0-9."""

from __future__ import annotations

from tether.rpc.discovery import candidate_paths, runtime_directory


def test_the_first_set_variable_names_the_directory() -> None:
    env = {"TMPDIR": "/var/tmp", "TMP": "/t", "XDG_RUNTIME_DIR": "/run/user/1000"}

    assert runtime_directory(env) == "/run/user/1000"
    assert runtime_directory({"TMP": "/t", "TEMP": "/e"}) == "/t"
    assert runtime_directory({"TEMP": "/e"}) == "/e"
    assert runtime_directory({"XDG_RUNTIME_DIR": ""}) == "/tmp"
    assert runtime_directory({}) == "/tmp"


def test_indexes_come_in_order_each_plain_then_flatpak_then_snap() -> None:
    paths = candidate_paths({"XDG_RUNTIME_DIR": "/run/user/1000"}, "linux")

    assert paths[:4] == [
        "/run/user/1000/discord-ipc-0",
        "/run/user/1000/app/com.discordapp.Discord/discord-ipc-0",
        "/run/user/1000/snap.discord/discord-ipc-0",
        "/run/user/1000/discord-ipc-1",
    ]
    assert paths[-1] == "/run/user/1000/snap.discord/discord-ipc-9"
    assert len(paths) == 30


def test_only_the_apps_own_directory_is_searched() -> None:
    paths = candidate_paths(
        {"XDG_RUNTIME_DIR": "/run/user/5", "TMPDIR": "/x"}, "darwin"
    )

    assert all(p.startswith("/run/user/5/") for p in paths)


def test_windows_uses_named_pipes() -> None:
    paths = candidate_paths({"XDG_RUNTIME_DIR": "/ignored"}, "win32")

    assert paths[0] == "\\\\?\\pipe\\discord-ipc-0"
    assert paths[9] == "\\\\?\\pipe\\discord-ipc-9"
    assert len(paths) == 10

"""Rich presence limits are checked when an activity is built, before any send."""

from __future__ import annotations

from typing import Any

import pytest

from tether.rpc import (
    Activity,
    ActivityType,
    Assets,
    Button,
    InvalidActivityError,
    Party,
    Secrets,
    Timestamps,
)


def test_a_full_activity_has_discords_wire_form() -> None:
    activity = Activity(
        type=ActivityType.COMPETING,
        state="In a group",
        details="Ranked",
        timestamps=Timestamps(start=1_700_000_000_000),
        assets=Assets(large_image="map", large_text="Dust II"),
        party=Party(id="p1", size=(2, 5)),
        buttons=(Button("Watch", "https://example.invalid/watch"),),
        instance=True,
    )

    assert activity.to_payload() == {
        "type": 5,
        "state": "In a group",
        "details": "Ranked",
        "timestamps": {"start": 1_700_000_000_000},
        "assets": {"large_image": "map", "large_text": "Dust II"},
        "party": {"id": "p1", "size": [2, 5]},
        "buttons": [{"label": "Watch", "url": "https://example.invalid/watch"}],
        "instance": True,
    }


def test_an_empty_activity_is_just_its_type() -> None:
    assert Activity().to_payload() == {"type": 0}


@pytest.mark.parametrize("kind", [1, 4, 6, -1])
def test_types_other_than_0_2_3_5_are_refused(kind: int) -> None:
    with pytest.raises(InvalidActivityError, match="not accepted"):
        Activity(type=kind)  # type: ignore[arg-type]  # the check under test


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": "x"}, "state must be 2 to 128"),
        ({"details": "y" * 129}, "details must be 2 to 128"),
        (
            {"state": "\U0001f600" * 65},
            "state must be 2 to 128 characters long, not 130",
        ),
        ({"buttons": (Button("a", "https://a.invalid"),) * 3}, "at most 2 buttons"),
    ],
)
def test_text_and_button_limits(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidActivityError, match=message):
        Activity(**kwargs)


def test_a_string_at_the_limits_is_accepted() -> None:
    Activity(state="ab", details="z" * 128)
    Activity(state="\U0001f600" * 64)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Button("x" * 33, "https://a.invalid"), "label must be 1 to 32"),
        (lambda: Button("ok", "ftp://a.invalid/file"), "http or https"),
        (
            lambda: Button("ok", "https://a.invalid/" + "p" * 500),
            "url must be 1 to 512",
        ),
        (lambda: Party(id="p", size=(3, 2)), "must not exceed max"),
        (lambda: Party(id="p", size=(0, 2)), "at least 1"),
        (lambda: Timestamps(start=10, end=5), "before start"),
        (lambda: Timestamps(start=-1), "at least 0"),
        (lambda: Assets(large_text="a"), "large_text must be 2 to 128"),
        (lambda: Assets(small_image="i" * 257), "small_image must be 1 to 256"),
        (lambda: Secrets(join="s" * 129), "join must be 1 to 128"),
    ],
)
def test_part_limits(make: Any, message: str) -> None:
    with pytest.raises(InvalidActivityError, match=message):
        make()


def test_secrets_are_hidden_from_repr() -> None:
    secrets = Secrets(join="join-secret", match="match-secret")

    assert "secret" not in repr(secrets).replace("Secrets", "")
    assert "join='***'" in repr(Activity(secrets=secrets))


def test_the_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError):
        Activity(state="x")

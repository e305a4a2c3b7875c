from __future__ import annotations

import pytest

from tether._ready import ReadyOutcome, ReadyState, ReadyTracker


def test_ready_with_no_guilds_is_due_at_once() -> None:
    tracker = ReadyTracker()
    tracker.ready([], now=0.0)

    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(), missing_guild_ids=())
    assert tracker.is_ready
    assert tracker.next_deadline() is None


def test_without_the_guilds_intent_ready_is_due_at_once_with_all_missing() -> None:
    tracker = ReadyTracker()
    tracker.ready([1, 2], now=0.0, guilds_intent=False)

    outcome = tracker.pop_ready()
    assert outcome is not None
    assert outcome.missing_guild_ids == (1, 2)
    assert not outcome.timed_out


def test_ready_is_due_when_every_listed_guild_arrived() -> None:
    tracker = ReadyTracker()
    tracker.ready([1, 2, 3], now=0.0)
    tracker.guild_arrived(2, now=0.1)
    tracker.guild_arrived(1, now=0.2)

    assert tracker.pop_ready() is None
    assert tracker.progress() == (2, 3)
    tracker.guild_arrived(3, now=0.3)

    assert tracker.pop_ready() == ReadyOutcome(
        guild_ids=(1, 2, 3), missing_guild_ids=()
    )
    assert tracker.pop_ready() is None


def test_quiet_period_is_measured_from_the_last_guild_create() -> None:
    tracker = ReadyTracker(quiet_period_s=10.0)
    tracker.ready([1, 2, 3], now=0.0)
    assert tracker.next_deadline() == 10.0

    tracker.guild_arrived(1, now=8.0)
    tracker.tick(12.0)
    assert tracker.state is ReadyState.STREAMING
    assert tracker.next_deadline() == 18.0

    tracker.tick(17.9)
    assert not tracker.is_due
    tracker.tick(18.0)

    outcome = tracker.pop_ready()
    assert outcome == ReadyOutcome(
        guild_ids=(1,), missing_guild_ids=(2, 3), timed_out=True
    )


def test_a_guild_joined_during_the_stream_restarts_the_quiet_period() -> None:
    tracker = ReadyTracker(quiet_period_s=5.0)
    tracker.ready([1], now=0.0)
    tracker.guild_arrived(99, now=4.0)
    tracker.tick(6.0)

    assert not tracker.is_due
    assert tracker.progress() == (0, 1)


def test_an_outage_counts_as_accounted_for_and_is_reported_missing() -> None:
    tracker = ReadyTracker()
    tracker.ready([1, 2], now=0.0)
    tracker.guild_arrived(1, now=1.0)
    tracker.guild_deleted(2, now=1.5, unavailable=True)

    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(1,), missing_guild_ids=(2,))


def test_a_guild_left_during_the_stream_is_no_longer_waited_for_nor_missing() -> None:
    tracker = ReadyTracker()
    tracker.ready([1, 2], now=0.0)
    tracker.guild_arrived(1, now=1.0)
    tracker.guild_deleted(2, now=1.5, unavailable=False)

    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(1,), missing_guild_ids=())
    assert tracker.progress() == (1, 1)


def test_a_late_guild_after_ready_updates_progress_but_no_second_ready() -> None:
    tracker = ReadyTracker(quiet_period_s=2.0)
    tracker.ready([1, 2], now=0.0)
    tracker.guild_arrived(1, now=1.0)
    tracker.tick(3.0)
    assert tracker.pop_ready() is not None
    assert tracker.missing_guild_ids() == (2,)

    tracker.guild_arrived(2, now=30.0)
    tracker.tick(60.0)

    assert tracker.missing_guild_ids() == ()
    assert tracker.progress() == (2, 2)
    assert tracker.pop_ready() is None
    assert tracker.next_deadline() is None


def test_an_outage_guild_that_recovers_during_the_stream_arrives() -> None:
    tracker = ReadyTracker(fetch_members=True)
    tracker.ready([1, 2], now=0.0)
    tracker.guild_deleted(1, now=0.5, unavailable=True)
    tracker.guild_arrived(1, now=1.0)
    tracker.guild_arrived(2, now=1.0)
    tracker.members_complete(2, now=1.1)

    assert not tracker.is_due
    tracker.members_complete(1, now=1.2)
    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(1, 2), missing_guild_ids=())


def test_fetch_members_waits_for_each_arrived_guilds_members() -> None:
    tracker = ReadyTracker(fetch_members=True)
    tracker.ready([1, 2], now=0.0)
    tracker.guild_arrived(1, now=0.1)
    tracker.guild_arrived(2, now=0.2)
    tracker.members_complete(1, now=0.3)

    assert not tracker.is_due
    tracker.members_complete(2, now=0.4)
    assert tracker.is_due


def test_fetch_members_does_not_wait_for_a_guild_in_outage() -> None:
    tracker = ReadyTracker(fetch_members=True)
    tracker.ready([1, 2], now=0.0)
    tracker.guild_arrived(1, now=0.1)
    tracker.guild_arrived(2, now=0.1)
    tracker.guild_deleted(2, now=0.2, unavailable=True)
    tracker.members_complete(1, now=0.3)

    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(1,), missing_guild_ids=(2,))


def test_member_chunks_restart_the_quiet_period_and_a_timeout_names_the_rest() -> None:
    tracker = ReadyTracker(quiet_period_s=10.0, fetch_members=True)
    tracker.ready([1, 2], now=0.0)
    tracker.guild_arrived(1, now=1.0)
    tracker.guild_arrived(2, now=1.0)
    tracker.members_chunk(1, now=9.0)
    tracker.members_complete(1, now=9.5)
    tracker.members_chunk(2, now=15.0)
    tracker.tick(24.9)
    assert not tracker.is_due

    tracker.tick(25.0)
    assert tracker.pop_ready() == ReadyOutcome(
        guild_ids=(1, 2),
        missing_guild_ids=(),
        members_incomplete_guild_ids=(2,),
        timed_out=True,
    )


def test_member_chunks_do_not_extend_the_wait_without_fetch_members() -> None:
    tracker = ReadyTracker(quiet_period_s=10.0)
    tracker.ready([1], now=0.0)
    tracker.members_chunk(1, now=9.0)
    tracker.tick(10.0)

    assert tracker.is_due


def test_a_new_session_starts_over_after_ready() -> None:
    tracker = ReadyTracker()
    tracker.ready([1], now=0.0)
    tracker.guild_arrived(1, now=0.1)
    assert tracker.pop_ready() is not None

    tracker.ready([1, 2], now=100.0)
    assert tracker.state is ReadyState.STREAMING
    assert tracker.progress() == (0, 2)
    tracker.guild_arrived(1, now=100.1)
    tracker.guild_arrived(2, now=100.2)
    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(1, 2), missing_guild_ids=())


def test_a_new_session_discards_an_untaken_ready() -> None:
    tracker = ReadyTracker()
    tracker.ready([], now=0.0)
    assert tracker.is_due

    tracker.ready([5], now=1.0)
    assert tracker.pop_ready() is None


def test_inputs_before_any_session_are_ignored() -> None:
    tracker = ReadyTracker()
    tracker.guild_arrived(1, now=0.0)
    tracker.guild_deleted(1, now=0.0, unavailable=True)
    tracker.members_complete(1, now=0.0)
    tracker.tick(1000.0)

    assert tracker.state is ReadyState.IDLE
    assert tracker.pop_ready() is None
    assert tracker.next_deadline() is None


def test_a_guild_listed_twice_counts_once() -> None:
    tracker = ReadyTracker()
    tracker.ready([1, 1], now=0.0)
    tracker.guild_arrived(1, now=0.1)

    assert tracker.pop_ready() == ReadyOutcome(guild_ids=(1,), missing_guild_ids=())


def test_a_negative_quiet_period_is_refused() -> None:
    with pytest.raises(ValueError, match="quiet_period_s"):
        ReadyTracker(quiet_period_s=-1.0)

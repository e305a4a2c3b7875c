"""The base class of every event tether hands to user code."""

from __future__ import annotations

__all__ = ["Event"]


class Event:
    """Base class of tether's events: subscribe to a class to get its instances.

    Subscribing to a base class delivers every subclass too, so ``Event`` itself
    receives everything.
    """

    __slots__ = ()

"""Drivers: run a sans-I/O protocol over a transport for a connection manager."""

from __future__ import annotations

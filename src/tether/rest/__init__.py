"""Discord's REST API: :class:`RESTClient` and what its calls take and return.

``RESTClient`` keeps to Discord's rate limits (per-route buckets, major parameters
and the global limit), waits out 429 answers, retries idempotent requests after
server and connection faults, and raises typed errors from :mod:`tether.errors`.
The rate-limit bookkeeping lives in :mod:`tether.rest.ratelimit`, free of I/O.
"""

from __future__ import annotations

from tether.rest.client import DEFAULT_API_URL, USER_AGENT, RESTClient, Snowflake
from tether.rest.files import File, FileSource
from tether.rest.gateway import GatewayBot, SessionStartLimit
from tether.rest.ratelimit import RateLimiter, RateLimitInfo
from tether.rest.route import Route

__all__ = [
    "DEFAULT_API_URL",
    "USER_AGENT",
    "File",
    "FileSource",
    "GatewayBot",
    "RESTClient",
    "RateLimitInfo",
    "RateLimiter",
    "Route",
    "SessionStartLimit",
    "Snowflake",
]

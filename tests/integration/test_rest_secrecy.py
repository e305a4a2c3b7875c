"""The token never shows: not in any log line at DEBUG, error text or repr."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable

import pytest
from _fake_rest import Fault, serve

from tether.errors import TetherError
from tether.rest import File, RESTClient

INTERACTION_TOKEN = "aW50ZXJhY3Rpb246c2VjcmV0LXRva2Vu"


async def test_token_is_absent_from_logs_errors_and_reprs(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    async def expect_error(call: Awaitable[object]) -> None:
        try:
            await call
        except TetherError as exc:
            errors.append(exc)
        else:
            raise AssertionError("an error was expected")

    async with serve(timeout_s=0.3, max_retries=1) as (server, rest):
        token = server.token
        # Successes on every endpoint.
        await rest.get_gateway()
        await rest.get_gateway_bot()
        await rest.get_current_user()
        await rest.get_current_application()
        await rest.get_guild(1, with_counts=True)
        await rest.get_channel(2)
        sent = await rest.create_message(
            3, "hi", files=[File("a.txt", token.encode())], reply_to=1
        )
        await rest.edit_message(3, sent["id"], content="edited")
        await rest.add_reaction(3, sent["id"], "👍")
        await rest.remove_own_reaction(3, sent["id"], "👍")
        await rest.remove_reaction(3, sent["id"], "👍", 42)
        await rest.bulk_delete_messages(3, [1, 2], reason="cleanup")
        await rest.delete_message(3, sent["id"])
        await rest.create_interaction_response(
            5, INTERACTION_TOKEN, 4, {"content": "x"}
        )

        # Waits, retries and failures of every kind.
        server.script(
            Fault("429", retry_after=0.05),
            Fault("429", retry_after=0.05, is_global=True),
            Fault("status", status=503),
        )
        await rest.get_channel(2)
        server.script(Fault("drop"))
        await rest.get_channel(2)
        await expect_error(rest.get_guild(404))
        server.forbidden_channels.add("9")
        await expect_error(rest.get_channel(9))
        await expect_error(rest.create_message(3, "x" * 2001))
        server.script(Fault("429", retry_after=120.0))
        await expect_error(rest.get_channel(2))
        server.script(Fault("status", status=502, body=token.encode()))
        await expect_error(rest.create_message(3, "boom"))
        server.script(Fault("drop"))
        await expect_error(rest.create_interaction_response(6, INTERACTION_TOKEN, 5))
        server.script(Fault("delay", delay_s=2.0), Fault("delay", delay_s=2.0))
        await expect_error(rest.get_current_user())

        reprs = [
            repr(rest),
            repr(rest.rate_limiter),
            repr(rest.rate_limiter.statistics()),
        ]

    async with RESTClient(f"Bot {token}", api_url=server.api_url) as wrong:
        reprs.append(repr(wrong))
    async with RESTClient("wrong-" + token, api_url=server.api_url) as wrong:
        await expect_error(wrong.get_current_user())
        reprs.append(repr(wrong))

    texts = [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    for error in errors:
        texts += [str(error), repr(error)]
        texts += traceback.format_exception(error)
    texts += reprs
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]

    # The run did what it says: requests at DEBUG, warnings, and every error kind.
    levels = {record.levelno for record in caplog.records}
    assert {logging.DEBUG, logging.WARNING} <= levels
    assert len(errors) == 8
    # The server did see the token: it was sent, just never shown.
    assert server.requests[0].headers["Authorization"] == f"Bot {token}"

    for secret in (token, INTERACTION_TOKEN):
        leaks = [text for text in texts if secret in text]
        assert not leaks

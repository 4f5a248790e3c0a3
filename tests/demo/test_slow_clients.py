"""Clients that never finish sending: the demo refuses them in bounded time and keeps
serving the others."""

from __future__ import annotations

import pytest


def test_a_stalled_body_gets_408_and_frees_its_slot(monkeypatch):
    """32 uploads that never sent their bodies held every admission slot until their clients
    went away (review): a body that stalls is refused after BODY_IDLE_SECONDS."""
    import asyncio

    from starlette.requests import Request

    from oneshot.demo import payload

    monkeypatch.setattr(payload, "BODY_IDLE_SECONDS", 0.2)

    async def stalled():
        sent = []

        async def receive():
            if not sent:
                sent.append(1)
                return {"type": "http.request", "body": b"{", "more_body": True}
            await asyncio.Event().wait()  # the rest never comes

        req = Request({"type": "http", "method": "POST", "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"100")]}, receive)
        with pytest.raises(payload.ApiError) as e:
            await payload.read_payload(req, 1000)
        return e.value

    err = asyncio.run(asyncio.wait_for(stalled(), 10))
    assert err.status == 408 and "stalled for 0.2 s" in str(err)


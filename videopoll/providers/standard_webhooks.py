"""Standard Webhooks signatures, as OpenAI and Replicate sign their push callbacks.

The spec (https://www.standardwebhooks.com): headers ``webhook-id``, ``webhook-timestamp``
(Unix seconds) and ``webhook-signature``, a space-delimited list of ``v1,<base64>`` entries,
each an HMAC-SHA256 over ``{id}.{timestamp}.{raw body}`` keyed with the base64 part of a
``whsec_…`` secret (providers.md §4.3, §6).

Why not ``standardwebhooks.Webhook.verify``: it checks the timestamp against its own clock with
a fixed five-minute window, where we must use the request's ``now`` and our configured
``callback_max_age``, and it raises plain ``ValueError``/``binascii.Error`` on a malformed
header instead of a rejection. This module answers every fault as ``CallbackRejected(401)``.

A replayed delivery inside the window verifies again; that is harmless here (a callback only
wakes the poller) and expected (both providers say deliveries can repeat).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time

from videopoll.errors import CallbackRejected
from videopoll.providers.base import CallbackRequest

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret; ``CallbackRejected`` if it is not one."""
    text = secret.strip()
    text = text[len(SECRET_PREFIX):] if text.startswith(SECRET_PREFIX) else text
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise CallbackRejected(401, "the webhook secret is not a whsec_ base64 secret") from None
    if not key:
        raise CallbackRejected(401, "the webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: str, raw: bytes) -> str:
    """One ``v1,<base64>`` signature (the fake providers sign with it too)."""
    digest = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + raw,
                      hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def signed_headers(secret: str, raw: bytes, now: float | None = None) -> dict[str, str]:
    """The three headers a provider sends with ``raw`` (for the fakes and tests)."""
    msg_id = f"msg_{secrets.token_hex(8)}"
    stamp = str(int(time.time() if now is None else now))
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": sign(secret, msg_id, stamp, raw)}


def verify(req: CallbackRequest, secret: str | None, max_age: float) -> None:
    """Return if ``req`` carries a valid, fresh signature by ``secret``; else a 401.

    No secret configured is a refusal too: a family that signs gets no URL token from the
    API layer, so an unverified callback would be anybody's.
    """
    if not secret:
        raise CallbackRejected(401, "no webhook secret is configured to verify the callback")
    msg_id = req.header("webhook-id")
    stamp = req.header("webhook-timestamp")
    given = req.header("webhook-signature")
    if not (msg_id and stamp and given):
        raise CallbackRejected(401, "missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        sent_at = float(stamp.strip())
    except ValueError:
        raise CallbackRejected(401, "webhook-timestamp is not a number") from None
    if not math.isfinite(sent_at) or not abs(req.now - sent_at) <= max_age:
        raise CallbackRejected(401, "the callback's timestamp is too old (or in the future)")
    expected = base64.b64decode(sign(secret, msg_id, stamp.strip(), req.raw)[3:])
    for entry in given.split():
        version, _, signature = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return
    raise CallbackRejected(401, "bad webhook-signature")

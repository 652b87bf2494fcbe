"""fal's webhook signature: ED25519 over the request, the user, the time and the body's hash.

Headers ``X-Fal-Webhook-Request-Id``, ``-User-Id``, ``-Timestamp`` and ``-Signature`` (hex);
the message is ``request_id \\n user_id \\n timestamp \\n sha256_hex(raw body)``, verified
against any key of fal's JWKS (``keys[].x``, base64url), cached at most 24 h (providers.md §7).
Verification itself is the comparison, so no secret is compared as a string.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from videopoll.errors import CallbackRejected
from videopoll.providers.base import CallbackRequest
from videopoll.providers.fields import as_dict, as_list, as_str, dig

JWKS_TTL = 24 * 3600.0  # "cache ≤ 24 h"
JWKS_REFRESH = 300.0  # an unverified signature refetches (key rotation) at most this often
JWKS_TIMEOUT = (3.0, 5.0)  # connect, read: a webhook answer must not wait long on fal's keys
HEADERS = ("request-id", "user-id", "timestamp", "signature")
SIGNATURE_BYTES = 64


def signed_message(request_id: str, user_id: str, timestamp: str, raw: bytes) -> bytes:
    """What fal signs (the fake provider signs the same)."""
    return "\n".join((request_id, user_id, timestamp, hashlib.sha256(raw).hexdigest())).encode()


def encode_key(raw: bytes) -> str:
    """A public key as a JWKS ``x``: base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class WebhookKeys:
    """fal's public keys: the configured ones (no fetch), else the JWKS, cached per process."""

    def __init__(self, session: requests.Session, jwks_url: str, static: str = "") -> None:
        self.session = session
        self.jwks_url = jwks_url
        self.static = _public_keys(s.strip() for s in static.split(",") if s.strip())
        self._cached: tuple[float, list[Ed25519PublicKey]] = (0.0, [])

    def verify(self, req: CallbackRequest, max_age: float) -> str:
        """The signed request id, or ``CallbackRejected(401)``."""
        request_id, user_id, stamp, signature = (
            req.header(f"x-fal-webhook-{name}").strip() for name in HEADERS)
        if not (request_id and user_id and stamp and signature):
            raise CallbackRejected(401, "missing X-Fal-Webhook-* signature headers")
        try:
            sent_at, raw_signature = float(stamp), bytes.fromhex(signature)
        except ValueError:
            raise CallbackRejected(401, "malformed X-Fal-Webhook-Timestamp or -Signature"
                                   ) from None
        if len(raw_signature) != SIGNATURE_BYTES:  # cheap checks before any key fetch
            raise CallbackRejected(401, "X-Fal-Webhook-Signature is not an Ed25519 signature")
        if not abs(req.now - sent_at) <= max_age:
            raise CallbackRejected(401, "the webhook's timestamp is too old (or in the future)")
        message = signed_message(request_id, user_id, stamp, req.raw)
        if not self._verified(raw_signature, message):
            raise CallbackRejected(401, "bad X-Fal-Webhook-Signature")
        return request_id

    def _verified(self, signature: bytes, message: bytes) -> bool:
        if _verifies(self.keys(), signature, message):
            return True
        if self.static or time.monotonic() - self._cached[0] < JWKS_REFRESH:
            return False
        return _verifies(self.keys(refresh=True), signature, message)

    def keys(self, refresh: bool = False) -> list[Ed25519PublicKey]:
        if self.static:
            return self.static
        fetched_at, keys = self._cached
        if keys and not refresh and time.monotonic() - fetched_at < JWKS_TTL:
            return keys
        try:
            resp = self.session.get(self.jwks_url, timeout=JWKS_TIMEOUT)
            resp.raise_for_status()
            entries = as_list(as_dict(resp.json()).get("keys"))
        except (requests.RequestException, ValueError) as exc:
            # 503, not 401: fal retries a webhook we failed, and the keys may be back by then
            raise CallbackRejected(
                503, f"cannot fetch fal's webhook keys ({type(exc).__name__})") from exc
        keys = _public_keys(as_str(dig(entry, "x")) for entry in entries)
        if not keys:
            raise CallbackRejected(503, "fal's JWKS holds no usable Ed25519 key")
        self._cached = (time.monotonic(), keys)
        return keys


def _public_keys(encoded: Iterable[str]) -> list[Ed25519PublicKey]:
    keys = []
    for text in encoded:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except ValueError:
            continue  # not base64url, or not 32 bytes: no key we can use
    return keys


def _verifies(keys: list[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False

"""Who is calling: authentication, and the caller's own ``Idempotency-Key`` namespace.

Without ``API_TOKEN`` only direct loopback callers are served; with it, a bearer token. A key
is scoped to the caller (the token, or the session without one) and the endpoint, and keeps a
fingerprint of the body that first used it: caller B reusing A's key gets a job of its own,
and A reusing it with another body gets 422, as payment APIs answer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from functools import lru_cache

from flask import request
from pydantic import BaseModel

from videopoll.api.errors import ApiError
from videopoll.models import JobRecord

IDEMPOTENCY_KEY_MAX = 200
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
# the same headers as WSGI names them: looked up in the environ, not through werkzeug's Headers
_IDEMPOTENCY_ENVIRON = "HTTP_IDEMPOTENCY_KEY"
_PROXY_ENVIRON = tuple("HTTP_" + name.upper().replace("-", "_") for name in PROXY_HEADERS)


@lru_cache(maxsize=1024)
def _is_loopback(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:  # a unix socket, or no peer at all
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack [::] bind sees IPv4 peers as ::ffff:a.b.c.d
    return address.is_loopback


def _bearer(header: str) -> str | None:
    """The token of ``Authorization: Bearer <token>``; the scheme is case-insensitive."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def check_caller(api_token: str | None) -> None:
    """Raise 401 unless this request may use the API."""
    if api_token is None:
        # Without a token only this host may call. A proxy on this host would make every
        # caller look local, so a proxied request is refused rather than trusted.
        environ = request.environ
        if any(name in environ for name in _PROXY_ENVIRON):
            raise ApiError(401, "unauthorized", "API_TOKEN is unset: only direct loopback "
                           "callers may call, and this request came through a proxy "
                           "(Forwarded/X-Forwarded-For); set API_TOKEN to serve it")
        if not _is_loopback(environ.get("REMOTE_ADDR")):
            raise ApiError(401, "unauthorized", "API_TOKEN is unset: only loopback callers "
                           "(127.0.0.1, ::1, ::ffff:127.0.0.1) may call; set API_TOKEN")
        return
    given = _bearer(request.headers.get("Authorization", "")) or ""
    if not hmac.compare_digest(given.encode(), api_token.encode()):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")


class Idempotency:
    """This request's ``Idempotency-Key`` (if any), scoped, and the fingerprint of its body."""

    def __init__(
        self, endpoint: str, session_id: str, body: BaseModel, api_token: str | None
    ) -> None:
        self.raw: str | None = request.environ.get(_IDEMPOTENCY_ENVIRON)
        self.scoped: str | None = None
        if self.raw:
            caller = f"token:{api_token}" if api_token is not None else f"session:{session_id}"
            scope = hashlib.sha256(caller.encode()).hexdigest()[:32]
            self.scoped = f"{endpoint}:{scope}:{self.raw}"
        # ``attempt`` counts n8n's own re-posts of one request: not part of what it asks for
        # Only a reused Idempotency-Key is checked against the body that first used it: a
        # request without one stores no fingerprint (64 bytes less in every such record).
        self.fingerprint: str | None = None
        if self.raw:
            canonical = body.model_dump(mode="json", by_alias=True, exclude={"attempt"})
            text = json.dumps([endpoint, canonical], sort_keys=True, separators=(",", ":"))
            self.fingerprint = hashlib.sha256(text.encode()).hexdigest()

    @staticmethod
    def check_header() -> None:
        key = request.environ.get(_IDEMPOTENCY_ENVIRON)
        if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX):
            raise ApiError(422, "validation_failed", "invalid Idempotency-Key", [
                {"field": "Idempotency-Key",
                 "reason": f"must be 1-{IDEMPOTENCY_KEY_MAX} characters"}])

    def check_reuse(self, existing: JobRecord) -> None:
        """Refuse a hit on this key made with another body; a hit on the task id is a lookup."""
        if self.scoped is None or f"key:{self.scoped}" not in existing.idempotency_keys:
            return
        if existing.request_fingerprint not in (None, self.fingerprint):
            raise ApiError(422, "validation_failed", "Idempotency-Key reused", [
                {"field": "Idempotency-Key", "reason": "was used with a different request body"}
            ])

"""Signed links to a job's status page (``/jobs/<id>/view?token=…``).

A browser cannot send the API's bearer header, so a link carries a signed, expiring token:
``<expires>.<HMAC-SHA256 of the job id and expiry>``, keyed by ``VIEW_SECRET`` (or, without
it, ``API_TOKEN``) and good for ``VIEW_LINK_SECONDS``. It opens one job's page and nothing
else. Minted by ``GET /jobs/<id>`` (``viewUrl``) and by the delivery chain for the callback
a job sends when it ends, so both need it outside Flask.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote

from videopoll.settings import Settings

TOKEN_DOMAIN = b"videopoll job view v1"  # the key signs view links and nothing else


def _key(settings: Settings) -> bytes | None:
    secret = settings.secret("view_secret") or settings.secret("api_token")
    if secret is None:
        return None
    return hmac.new(secret.encode(), TOKEN_DOMAIN, hashlib.sha256).digest()


def _signature(key: bytes, job_id: str, expires: int) -> str:
    mac = hmac.new(key, f"{job_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def view_token(settings: Settings, job_id: str, now: float | None = None) -> str | None:
    """A token that opens ``job_id``'s page until ``VIEW_LINK_SECONDS`` from now."""
    key = _key(settings)
    if key is None:
        return None
    expires = int((now or time.time()) + settings.view_link_seconds)
    return f"{expires}.{_signature(key, job_id, expires)}"


def token_valid(settings: Settings, job_id: str, token: str, now: float | None = None) -> bool:
    key = _key(settings)
    expires, _, given = token.partition(".")
    if key is None or not expires.isdigit() or len(expires) > 12:
        return False
    if int(expires) < (now or time.time()):
        return False
    return hmac.compare_digest(given.encode(), _signature(key, job_id, int(expires)).encode())


def view_url(settings: Settings, job_id: str, base_url: str) -> str:
    """The page's address for ``GET /jobs/<id>``'s ``viewUrl``, on ``PUBLIC_BASE_URL`` when
    set (a bot calls the API internally, a person opens the link outside)."""
    base = (settings.public_base_url or base_url).rstrip("/")
    url = f"{base}/jobs/{quote(job_id, safe='')}/view"
    token = view_token(settings, job_id)
    return f"{url}?token={token}" if token else url



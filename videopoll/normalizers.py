"""The normalizer chain machinery every provider family runs its own answer shapes through.

A family's ``normalize`` first judges the envelope (HTTP status, body codes: faults are
exceptions the poller acts on), then hands the body to ``run_chain`` with the family's own
ordered parsers. Each family owns its chain: a parser of one provider never sees another
provider's answers, so a KIE-shaped body sent by some other API is unparseable there, not
mistaken for KIE (providers.md §3.2).

``run_chain`` asks each parser in order and the first that recognises the shape wins. Order
matters because shapes overlap: specific shapes come before loose ones, which would otherwise
match by accident. A success without a usable URL falls through to the later parsers, the
``fallback`` ones last (they dig a URL out of fields the first parser did not read, and only
ever rescue such a success); if none finds one the success counts as "not ready yet" and the
poller's missing-output budget ends it. A body no parser recognises is a ``TransientError``
with a sample.

``guarded`` is the net: parsers read every field defensively (``providers.fields``), but should
one still raise, the bug is logged with its traceback and becomes a ``TransientError`` whose
reason starts with ``PARSER_BUG``, never a crashed poll.

Unknown state values (outside a provider's documented set) are read as "running" so the
deadline ends the job (providers.md §10.1), and are logged as a warning once per (parser,
value) — never silently.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from videopoll.errors import TransientError, VideopollError
from videopoll.models import PollResult, PollState, ProviderResponse
from videopoll.providers.fields import http_urls, short_repr
from videopoll.redact import redact

log = logging.getLogger(__name__)

VIDEO_EXT = re.compile(r"\.(mp4|mov|webm|m4v)(\?|$)", re.IGNORECASE)
PARSER_BUG = "normalizer bug"
_WARNED: set[tuple[str, str]] = set()
_WARNED_MAX = 1024  # bounded: a provider inventing values must not grow memory forever


def warn_unknown(parser: str, field: str, value: Any) -> None:
    """Log an undocumented state value once per (parser, value); it is read as running."""
    shown = short_repr(value)
    key = (parser, shown)
    if key in _WARNED:
        return
    if len(_WARNED) < _WARNED_MAX:
        _WARNED.add(key)
    log.warning("%s: undocumented %s %s, treated as running until the deadline",
                parser, field, shown)


class Normalizer:
    """One response shape. ``parse`` returns ``None`` when the body is not this shape."""

    name: ClassVar[str]
    fallback: ClassVar[bool] = False

    def parse(self, body: Any) -> PollResult | None:
        raise NotImplementedError

    def result(self, state: PollState, **kw: Any) -> PollResult:
        return PollResult(state=state, parser=self.name, **kw)


class AnyVideoUrlNormalizer(Normalizer):
    """Last resort: any string ending in a video extension anywhere in the body."""

    name = "any_video_url"
    fallback = True

    def parse(self, body: Any) -> PollResult | None:
        found: list[str] = []

        def walk(node: Any, depth: int) -> None:
            if depth > 6 or found:
                return
            if isinstance(node, dict):
                for value in node.values():
                    walk(value, depth + 1)
            elif isinstance(node, list):
                for value in node:
                    walk(value, depth + 1)
            elif isinstance(node, str) and VIDEO_EXT.search(node):
                found.extend(http_urls(node, depth=1))

        walk(body, 0)
        return self.result(PollState.SUCCEEDED, output_urls=found) if found else None


LAST_RESORT: tuple[Normalizer, ...] = (AnyVideoUrlNormalizer(),)


def run_chain(chain: Sequence[Normalizer], body: Any, sample: str = "") -> PollResult:
    """The first parser that recognises ``body`` wins; a success without URL falls through."""
    urlless: PollResult | None = None
    for parser in chain:
        if parser.fallback and urlless is None:
            continue  # fallbacks only rescue a success without URL
        result = parser.parse(body)
        if result is None:
            continue
        if result.state is PollState.SUCCEEDED and not result.output_urls:
            urlless = urlless or result
            continue
        if urlless is not None and result.state is not PollState.SUCCEEDED:
            continue
        return result
    if urlless is not None:
        return urlless
    raise TransientError("unparseable response", sample)


def guarded(resp: ProviderResponse, judge: Callable[[ProviderResponse], PollResult]) -> PollResult:
    """Run a family's ``judge``; any exception but our own typed faults is a parser bug."""
    try:
        return judge(resp)
    except VideopollError:
        raise
    except Exception as exc:  # the net: a bug of ours must not crash the poll
        log.exception("normalizer bug", extra={"sample": redact(resp.text_sample, 200)})
        raise TransientError(f"{PARSER_BUG}: {type(exc).__name__}", sample_of(resp)) from exc


def sample_of(resp: ProviderResponse) -> str:
    """A short text of the answer for logs and error samples."""
    if resp.text_sample or resp.body is None:
        return resp.text_sample
    try:
        return json.dumps(resp.body)[:500]
    except (TypeError, ValueError, RecursionError):
        return short_repr(resp.body)


def json_body(resp: ProviderResponse) -> Any:
    """The JSON body, or a ``TransientError`` when the answer is not JSON (an HTML error page,
    a truncated body)."""
    if resp.body is None:
        raise TransientError("response is not JSON", resp.text_sample)
    return resp.body


__all__ = ["LAST_RESORT", "PARSER_BUG", "Normalizer", "guarded", "json_body", "run_chain",
           "sample_of", "warn_unknown"]

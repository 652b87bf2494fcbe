"""Poll messages written straight into the Redis list a worker consumes, in one round trip.

Why not ``poll_job.apply_async``: kombu's publish spends ~0.8 ms of CPU per call (a client
object per publish, the exchange declaration check, the full protocol-2 header set), which
was 57% of a submission and a fifth of a poll turn, and its ~1.1 KB message sits in Redis
for every job waiting out its countdown. With a Redis broker a poll message is one ``LPUSH``
of a JSON envelope onto the queue's list, so this module builds that envelope itself: the
message a worker receives is the one Celery would have sent (protocol 2, kombu's Redis
envelope), minus what the worker reads as a default when it is absent (``root_id``,
``correlation_id`` and ``reply_to`` (the task has no result), ``shadow``, time limits,
stamps, the sender's name). On the default deployment (broker and job store on one Redis)
the submission's record and its first poll are then written by one Lua call: no record
without its message, no message without its record.

Only for a ``redis://``/``rediss://`` broker, whose queues are plain lists (no global key
prefix, priority 0). Any other broker, or ``DIRECT_PUBLISH=false``, publishes through Celery.
``tests/test_poll_messages.py`` holds this envelope against the one Celery builds.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote  # json.dumps of a str, less its checks
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from videopoll.runtime import Runtime

POLL_TASK = "videopoll.poll_job"
POLL_QUEUE = "videopoll"  # celeryconfig's task_default_queue
REDIS_SCHEMES = ("redis", "rediss")
# kombu's retry for the API's publishes: one quick retry for a pooled connection gone stale
API_PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1,
                     "interval_max": 0.1}


@dataclass(frozen=True)
class QueuedMessage:
    """One message as kombu's Redis transport stores it: the list and the serialized envelope."""

    queue: str
    payload: str
    task_id: str


def direct_capable(broker_url: str) -> bool:
    """Whether the broker's queues are Redis lists this module can write to."""
    return broker_url.split("://", 1)[0] in REDIS_SCHEMES


def poll_message(job_id: str, token: int, countdown: float = 0.0,
                 now: float | None = None) -> QueuedMessage:
    """The message for poll ``token`` of ``job_id``, due ``countdown`` seconds from ``now``."""
    entropy = os.urandom(32).hex()  # the task id's 128 bits and the delivery tag's
    task_id = _uuid4(entropy[:32])
    body = f'[[{_quote(job_id)},{int(token)}],{{}},{{}}]'
    eta = ""
    if countdown > 0:  # Celery sends no eta for a zero countdown either
        due = (time.time() if now is None else now) + countdown
        eta = ',"eta":"' + datetime.fromtimestamp(due, UTC).isoformat() + '"'
    payload = _ENVELOPE % {
        "body": base64.b64encode(body.encode()).decode(), "id": task_id, "eta": eta,
        "argsrepr": _quote(repr((job_id, token))), "tag": entropy[32:]}
    return QueuedMessage(POLL_QUEUE, payload, task_id)


def _uuid4(hex32: str) -> str:
    """A version-4 UUID's text from 32 random hex digits (``uuid.UUID`` took a third of the
    message's time): the version nibble is 4, the variant's top bits 10."""
    variant = "89ab"[int(hex32[16], 16) & 3]
    return (f"{hex32[:8]}-{hex32[8:12]}-4{hex32[13:16]}-{variant}{hex32[17:20]}-"
            f"{hex32[20:32]}")


# The envelope as one template (a submission builds one per request): kombu's Redis keys,
# Celery's protocol-2 headers.
_ENVELOPE = json.dumps({
    "body": "@body", "content-encoding": "utf-8", "content-type": "application/json",
    "headers": {"lang": "py", "task": POLL_TASK, "id": "@id", "retries": 0,
                "argsrepr": "@argsrepr", "kwargsrepr": "{}", "ignore_result": True},
    "properties": {"delivery_info": {"exchange": "", "routing_key": POLL_QUEUE},
                   "priority": 0, "body_encoding": "base64", "delivery_tag": "@tag"},
}, separators=(",", ":")).replace("%", "%%").replace('"@body"', '"%(body)s"').replace(
    '"@id"', '"%(id)s"').replace('"@argsrepr"', "%(argsrepr)s").replace(
    '"@tag"', '"%(tag)s"').replace('"ignore_result":true', '"ignore_result":true%(eta)s')


def publish_poll(rt: Runtime, job_id: str, token: int, countdown: float = 0.0,
                 patient: bool = True) -> None:
    """Queue poll ``token`` of ``job_id``. ``patient=False`` (the API) retries a stale pooled
    connection once and never waits: a publish that fails is the sweeper's to make good."""
    broker = rt.direct_broker
    if broker is not None:
        message = poll_message(job_id, token, countdown)
        broker.lpush(message.queue, message.payload)
        return
    from videopoll.tasks.poll import poll_job  # the task module pulls in Celery

    retry = {} if patient else {"retry": True, "retry_policy": API_PUBLISH_RETRY}
    poll_job.apply_async((job_id, token), countdown=countdown, **retry)

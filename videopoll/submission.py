"""Turn a validated request into a new job record. Plain functions shared by the API and CLI.

``idempotency_key`` arrives already scoped (``<endpoint>:<caller hash>:<header value>``): a
caller's ``Idempotency-Key`` never names another caller's job.
"""

from __future__ import annotations

import os
import time
from typing import Any

from videopoll.models import GenerateRequest, GenerationSpec, JobRecord, JobStatus, PollVideoRequest
from videopoll.providers.base import ModelInfo
from videopoll.settings import Settings
from videopoll.transitions import FIRST_POLL_SPREAD, spread


def new_job_id() -> str:
    """128 random bits, as hex (``uuid4`` spent four times as long on the same bits)."""
    return f"job_{os.urandom(16).hex()}"


def poll_job_record(
    req: PollVideoRequest, model: ModelInfo, settings: Settings, idempotency_key: str | None
) -> JobRecord:
    """A job that polls a task somebody else submitted (the n8n path).

    ``attempt`` > 1 means n8n is re-posting a job it started earlier: if we no longer know it,
    its used attempts still count against the budget.
    """
    keys = [f"task:{model.family}:{req.task_id}"]
    if idempotency_key:
        keys.append(f"key:{idempotency_key}")
    return _record(
        req, model, settings, keys,
        kind="poll",
        provider_task_id=req.task_id,
        poll_token=1,
        attempts=min(req.attempt - 1, settings.max_attempts),
        next_poll_at=time.time() + spread(settings.countdown_for(req.attempt), FIRST_POLL_SPREAD),
    )


def generate_job_record(
    req: GenerateRequest, model: ModelInfo, settings: Settings, idempotency_key: str | None
) -> JobRecord:
    """A job whose first turn submits the generation (token 0), then polls from token 1."""
    spec = GenerationSpec(
        model=model.name,
        prompt=req.prompt,
        aspect_ratio=req.aspect_ratio,
        duration_seconds=req.duration_seconds or model.default_duration,
        image_urls=[str(u) for u in req.image_urls],
    )
    keys = [f"key:{idempotency_key}"] if idempotency_key else []
    return _record(req, model, settings, keys, kind="generate", spec=spec, poll_token=0,
                   next_poll_at=time.time())


def _record(
    req: PollVideoRequest | GenerateRequest, model: ModelInfo, settings: Settings,
    keys: list[str], **fields: Any,
) -> JobRecord:
    """A job for a request: who asked, for which model."""
    return _new_job(
        settings, keys, model=model.name, family=model.family, session_id=req.session_id,
        chat_id=req.chat_id, metadata=req.metadata,
        callback_url=str(req.callback_url) if req.callback_url else None,
        progress_messages=(settings.progress_messages if req.progress_messages is None
                           else req.progress_messages),
        **fields)


def linked_job_record(parent: JobRecord, settings: Settings, action: str, chat_id: str | int,
                      **fields: Any) -> JobRecord:
    """A job started by a button on ``parent``'s video: same caller, same chat, one per press.

    The idempotency key is the (action, parent) pair, so a double tap, or Telegram resending
    the update, finds the job the first press started.
    """
    return _new_job(
        settings, [f"button:{action}:{parent.job_id}"], model=parent.model,
        family=parent.family, session_id=parent.session_id, chat_id=chat_id,
        callback_url=parent.callback_url, metadata=parent.metadata,
        progress_messages=parent.progress_messages, parent_job_id=parent.job_id,
        next_poll_at=time.time(), **fields)


def _new_job(settings: Settings, keys: list[str], **fields: Any) -> JobRecord:
    """What every new job gets: an id, the attempt budget and its deadline."""
    now = time.time()
    return JobRecord(
        job_id=new_job_id(),
        max_attempts=settings.max_attempts,
        deadline_at=now + settings.job_deadline_seconds,
        idempotency_keys=keys,
        history=[(now, JobStatus.QUEUED.value)],
        **fields,
    )

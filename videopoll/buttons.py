"""What a press on a delivered video's buttons does (Telegram callback queries).

Each press is checked against the chat that owns the job, and is idempotent: the linked job a
press starts is keyed on (action, parent job), so a double tap starts one job. Extend uses
Veo's extend endpoint (the stitched video is delivered), Get 1080p / Get 4K fetch Veo's HD
renditions (the family's ``renditions``),
Regenerate resubmits the original request; Publish, and Regenerate when the caller has a
callback, are forwarded to the caller as signed events, since the caller decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from videopoll.models import GenerationSpec, JobRecord, JobStatus
from videopoll.notify import RENDITION_ACTIONS, RENDITION_LABELS, chat_for
from videopoll.providers import PROVIDERS
from videopoll.runtime import Runtime
from videopoll.submission import linked_job_record

ACTIONS = ("pub", "regen", "ext", *RENDITION_ACTIONS)
EXTEND_PROMPT = "Continue the scene naturally."


@dataclass(frozen=True)
class Press:
    action: str
    job_id: str
    chat_id: str | int
    query_id: str


@dataclass(frozen=True)
class Outcome:
    answer: str  # the short text Telegram shows the user
    new_job: JobRecord | None = None
    forward: bool = False


def parse_update(update: dict[str, Any]) -> Press | None:
    """The button press in a Telegram update, or ``None`` for anything else."""
    query = update.get("callback_query")
    if not isinstance(query, dict):
        return None
    data, query_id = query.get("data"), query.get("id")
    message = query.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    if not (isinstance(data, str) and isinstance(query_id, str) and chat_id is not None):
        return None
    action, _, job_id = data.partition(":")
    if action not in ACTIONS or not job_id.startswith("job_") or len(job_id) > 64:
        return None
    return Press(action, job_id, chat_id, query_id)


def decide(rt: Runtime, press: Press) -> Outcome:
    parent = rt.store.get(press.job_id)
    if parent is None:
        return Outcome("This video is no longer available.")
    if str(chat_for(rt, parent)[0]) != str(press.chat_id):
        return Outcome("This button belongs to another chat.")
    if parent.status is not JobStatus.SUCCEEDED:
        return Outcome("This video is not ready yet.")
    if press.action == "pub" or (press.action == "regen" and parent.callback_url):
        if not parent.callback_url:
            return Outcome("Publishing is not set up for this video.")
        return Outcome("Sent." if press.action == "pub" else "Regeneration requested.",
                       forward=True)
    if press.action == "regen":
        if parent.spec is None:
            return Outcome("This video was not started here, so it cannot be regenerated.")
        spec = parent.spec.model_copy(update={"extend_task_id": None})
        return Outcome("Regenerating…", _linked(rt, parent, press, kind="generate", spec=spec,
                                                poll_token=0))
    family = PROVIDERS.get(parent.family)
    variant = RENDITION_ACTIONS.get(press.action)
    able = family is not None and (family.extends if press.action == "ext"
                                   else variant in family.renditions)
    if not able or not parent.provider_task_id:
        return Outcome("This model cannot do that.")
    if press.action == "ext":
        prompt = parent.spec.prompt if parent.spec else EXTEND_PROMPT
        spec = GenerationSpec(model=parent.model, prompt=prompt,
                              extend_task_id=parent.provider_task_id)
        return Outcome("Extending your video…", _linked(rt, parent, press, kind="generate",
                                                         spec=spec, poll_token=0))
    assert variant is not None
    return Outcome(f"Getting the {RENDITION_LABELS[variant]} version…", _linked(
        rt, parent, press, kind="poll", provider_task_id=parent.provider_task_id,
        variant=variant, poll_token=1))


def _linked(rt: Runtime, parent: JobRecord, press: Press, **fields: Any) -> JobRecord:
    return linked_job_record(parent, rt.settings, press.action, press.chat_id, **fields)

"""Tell the user how their job ended. The console notifier stands in for Telegram offline."""

from __future__ import annotations

import abc
import json
import sys
import time
from typing import TextIO

from videopoll.messages import user_message
from videopoll.models import JobRecord, JobStatus
from videopoll.settings import Settings


class Notifier(abc.ABC):
    @abc.abstractmethod
    def send(self, job: JobRecord) -> str:
        """Deliver the user-facing message for ``job``; return a message id."""


class ConsoleNotifier(Notifier):
    """One JSON line per notification on stdout, so a person and a test can both read it."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def send(self, job: JobRecord) -> str:
        # delivery notifies before the record stage marks the job succeeded
        status = JobStatus.SUCCEEDED if job.status is JobStatus.DELIVERING else job.status
        message_id = f"console-{job.job_id}-{int(time.time() * 1000)}"
        line = {
            "event": "notify",
            "message_id": message_id,
            "job_id": job.job_id,
            "session_id": job.session_id,
            "chat_id": job.chat_id,
            "status": status.value,
            "message": user_message(status, job.error_code),
            "video": job.delivery.storage_url,
            "error_code": job.error_code.value if job.error_code else None,
        }
        self.out.write("NOTIFY " + json.dumps(line) + "\n")
        self.out.flush()
        return message_id


def build_notifier(settings: Settings) -> Notifier:
    if settings.notifier == "console":
        return ConsoleNotifier()
    raise ValueError(f"NOTIFIER {settings.notifier!r} is not supported yet (use console)")

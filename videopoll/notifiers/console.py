"""One JSON line per notification on stdout: the offline stand-in for Telegram.

It prints what Telegram would show (text, caption, buttons, link), so a person running the
demo, and a test reading the worker's output, both see each message exactly once.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

from videopoll.models import JobRecord
from videopoll.notifiers.base import Notice, Notifier


class ConsoleNotifier(Notifier):
    name = "console"

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def send(self, job: JobRecord, notice: Notice) -> str:
        message_id = f"console-{job.job_id}-{notice.event}-{int(time.time() * 1000)}"
        line = {
            "event": "notify",
            "message_id": message_id,
            "job_id": job.job_id,
            "session_id": job.session_id,
            "chat_id": notice.chat_id,
            "status": notice.event,
            "message": notice.text,
            "caption": notice.caption,
            "video": notice.link,
            "buttons": [b.text for b in notice.buttons],
            "error_code": job.error_code.value if job.error_code else None,
        }
        self.out.write("NOTIFY " + json.dumps(line) + "\n")
        self.out.flush()
        return message_id

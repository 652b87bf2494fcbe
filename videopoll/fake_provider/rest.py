"""What the fakes of the plain REST families share (Luma, Ark, MiniMax, Kling).

Each of those APIs creates a task with one POST and reads it with one GET, so the scripted
parts are the same: the submit scenarios (``maintenance`` refused, ``lostreply`` created but
answered 500, ``slowreply`` answered late), the callback scheduled when a submit carries a
callback URL, and the faults every status route plays (HTTP 500, an HTML 502 page, a 200 that
is not JSON). A family fake says only how its API words each of them.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from videopoll.fake_provider.core import FakeFamily, FakeReply, FakeRequest, Outbound, text_reply
from videopoll.fake_provider.scenarios import parse_scenario

SUCCESS_STEPS = frozenset({"success", "stitched", "objresult"})
PLACEHOLDER_SERVER = "http://127.0.0.1"


class RestFake(FakeFamily):
    """A fake whose API creates and reads one task object per id."""

    kind: ClassVar[str]  # the prefix of the task ids it issues

    def refused(self) -> FakeReply:
        """The API's answer to a create it refused before any task existed (maintenance)."""
        raise NotImplementedError

    def lost(self) -> FakeReply:
        """An HTTP 500 answer to a create that did make a task."""
        raise NotImplementedError

    def created(self, task_id: str, body: dict[str, Any]) -> FakeReply:
        raise NotImplementedError

    def answer(self, req: FakeRequest, task_id: str, step: str, k: int) -> FakeReply:
        """The status route's answer for one scripted step (not the shared faults)."""
        raise NotImplementedError

    def task(self, task_id: str, step: str, k: int, url: str) -> dict[str, Any]:
        """The task object at ``step`` (status answers and callbacks carry it)."""
        raise NotImplementedError

    def submit(self, req: FakeRequest, prompt: str, body: dict[str, Any],
               callback_url: Any, kind: str | None = None) -> FakeReply:
        scenario = parse_scenario(prompt)
        if scenario.name == "maintenance":
            return self.refused()
        task_id = self.state.new_task(kind or self.kind, prompt, body)
        if scenario.name == "lostreply":
            return self.lost()
        if isinstance(callback_url, str) and callback_url.startswith("http"):
            self.schedule(task_id, callback_url, req.server_url)
        answer = self.created(task_id, body)
        if scenario.name == "slowreply":
            answer.delay = float(scenario.n)
        return answer

    def schedule(self, task_id: str, url: str, server_url: str) -> None:
        """The callback the provider sends when the task ends."""
        self.state.call_back_later(task_id, url,
                                   lambda step: self.pushed(task_id, step, server_url))

    def status(self, req: FakeRequest, task_id: str) -> FakeReply:
        _, step, k = self.state.poll(task_id)
        if step == "http500":
            return self.lost()
        if step == "html502":
            return text_reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        if step == "garbage":
            return text_reply(200, "not json{{", "text/plain")
        return self.answer(req, task_id, step, k)

    def callback(self, task_id: str, step: str, forged: bool = False) -> Outbound | None:
        # Unsigned: a forgery is told apart by the URL token, which the sender does not hold.
        return self.pushed(task_id, step, PLACEHOLDER_SERVER)

    def pushed(self, task_id: str, step: str, server_url: str) -> Outbound:
        url = f"{server_url}/files/{task_id}.mp4"
        return Outbound({}, json.dumps(self.task(task_id, step, 99, url)).encode())


__all__ = ["SUCCESS_STEPS", "RestFake"]

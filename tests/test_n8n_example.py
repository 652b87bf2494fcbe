"""``examples/n8n/videopoll-wait.json`` is wired as the README says: a trigger, one call to
our API that passes n8n's resume URL as ``callbackUrl``, a Wait node resumed by that call,
then one branch per outcome ``type``. (``make n8n-e2e`` runs it in a real n8n.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from videopoll.models import PollVideoRequest
from videopoll.webhooks import EVENT_TYPES

WORKFLOW = Path(__file__).resolve().parents[1] / "examples" / "n8n" / "videopoll-wait.json"


def load() -> tuple[dict[str, dict[str, Any]], dict[str, list[list[str]]]]:
    data = json.loads(WORKFLOW.read_text())
    nodes = {n["name"]: n for n in data["nodes"]}
    wires = {src: [[link["node"] for link in out] for out in conn["main"]]
             for src, conn in data["connections"].items()}
    return nodes, wires


def only(nodes: dict[str, dict[str, Any]], node_type: str) -> dict[str, Any]:
    [node] = [n for n in nodes.values() if n["type"] == f"n8n-nodes-base.{node_type}"]
    return node


def test_the_call_carries_the_resume_url_and_fields_our_api_accepts() -> None:
    nodes, _ = load()
    call = only(nodes, "httpRequest")["parameters"]
    assert call["method"] == "POST" and call["url"].endswith("/webhook/poll-video")
    body = call["jsonBody"]
    assert re.search(r"\bcallbackUrl:\s*\$execution\.resumeUrl\b", body)
    accepted = {f.alias or name for name, f in PollVideoRequest.model_fields.items()}
    sent = set(re.findall(r"[{,]\s*(\w+):", body)) - {"n8nExecution"}  # metadata's own key
    assert {"sessionId", "taskId", "model", "callbackUrl"} <= sent <= accepted


def test_trigger_then_call_then_wait_then_one_branch_per_outcome() -> None:
    nodes, wires = load()
    trigger, call = only(nodes, "webhook"), only(nodes, "httpRequest")
    wait, switch = only(nodes, "wait"), only(nodes, "switch")
    assert wires[trigger["name"]] == [[call["name"]]]
    assert wires[call["name"]] == [[wait["name"]]]
    assert wires[wait["name"]] == [[switch["name"]]]
    resume = wait["parameters"]
    assert (resume["resume"], resume["httpMethod"]) == ("webhook", "POST")  # we POST
    assert resume["limitWaitTime"] is True  # a lost callback still ends the execution
    rules = switch["parameters"]["rules"]["values"]
    branches = {rule["conditions"]["conditions"][0]["rightValue"]: wires[switch["name"]][i]
                for i, rule in enumerate(rules)}
    assert all(r["conditions"]["conditions"][0]["leftValue"] == "={{ $json.body.type }}"
               for r in rules)
    assert set(branches) == {EVENT_TYPES["succeeded"], EVENT_TYPES["failed"]}
    assert branches["video.succeeded"] == ["Video ready"]
    assert branches["video.failed"] == ["Video failed"]
    assert switch["parameters"]["options"]["fallbackOutput"] == "extra"  # canceled, timeout
    assert len(wires[switch["name"]]) == 3
    ready = {a["name"]: a["value"] for a in
             nodes["Video ready"]["parameters"]["assignments"]["assignments"]}
    assert ready["videoUrl"] == "={{ $json.body.data.outputUrl }}"  # the callback's shape

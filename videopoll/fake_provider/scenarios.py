"""Scripted task behaviours for the fake provider, chosen by prompt or task id.

The scenario is the first match of ``SCENARIO`` in the prompt (at submit) or in the task id
(for ids the fake never issued: the n8n path). Ids the fake issues embed the scenario, so a
restarted fake plays the same script. ``N`` counts status requests of one task.

| scenario   | N default | polls 1..N                        | after N                   |
|------------|-----------|-----------------------------------|---------------------------|
| ok         | 2         | generating                        | success with URL          |
| moderation | 1         | generating                        | failed: content policy    |
| upstream   | 1         | generating                        | failed: upstream error    |
| flaky      | 3         | HTTP 500 / 502 HTML / 200 garbage | success with URL          |
| ratelimit  | 3         | HTTP 429, Retry-After: 1          | success with URL          |
| nourl      | 2         | success with an empty URL list    | success with URL          |
| never      | —         | generating forever                |                           |
| auth       | —         | body code 401 forever             |                           |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCENARIO = re.compile(r"(ok|moderation|upstream|flaky|ratelimit|never|nourl|auth)(\d+)?")
DEFAULT_N = {"ok": 2, "moderation": 1, "upstream": 1, "flaky": 3, "ratelimit": 3, "nourl": 2,
             "never": 0, "auth": 0}


@dataclass(frozen=True)
class Scenario:
    name: str
    n: int

    @property
    def token(self) -> str:
        return f"{self.name}{self.n}"


def parse_scenario(text: str) -> Scenario:
    match = SCENARIO.search(text or "")
    if match is None:
        return Scenario("ok", DEFAULT_N["ok"])
    name = match.group(1)
    n = int(match.group(2)) if match.group(2) else DEFAULT_N[name]
    return Scenario(name, n)


@dataclass(frozen=True)
class Step:
    """What the k-th status request of a task answers."""

    kind: str  # generating | success | nourl | moderation | upstream | http500 | html502
    #          | garbage | ratelimited | auth


def step_for(scenario: Scenario, k: int) -> Step:
    name, n = scenario.name, scenario.n
    if name == "never":
        return Step("generating")
    if name == "auth":
        return Step("auth")
    if name == "flaky":
        return Step(("http500", "html502", "garbage")[(k - 1) % 3] if k <= n else "success")
    if name == "ratelimit":
        return Step("ratelimited" if k <= n else "success")
    if name == "nourl":
        return Step("nourl" if k <= n else "success")
    if k <= n:
        return Step("generating")
    return Step({"ok": "success", "moderation": "moderation", "upstream": "upstream"}[name])

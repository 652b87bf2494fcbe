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
| notfound   | 1         | 422 "record is null" (Veo) / 404  | generating once, success  |
| expired    | —         | 422 "records within 14 days"      |                           |
| stitched   | 2         | generating                        | Veo extend success (1)    |
| objresult  | 2         | generating                        | Market resultJson object  |
| gone       | 2         | generating                        | success; the URL is 404   |

(1) the new segment in ``resultUrls``, the stitched video in ``fullResultUrls``.

Submit faults (the prompt picks them; the billing question is whether a task was created):

| scenario    | submit answers                                   | task created? |
|-------------|--------------------------------------------------|---------------|
| maintenance | body code 455 "Service unavailable"              | no            |
| lostreply   | HTTP 500 "Server Error"                          | yes (then polls like ok) |
| slowreply   | success, but only after N seconds (default 2)    | yes (then polls like ok) |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCENARIO = re.compile(r"(ok|moderation|upstream|flaky|ratelimit|never|nourl|auth|notfound|expired|"
                      r"stitched|objresult|gone|maintenance|lostreply|slowreply)(\d+)?")
DEFAULT_N = {"ok": 2, "moderation": 1, "upstream": 1, "flaky": 3, "ratelimit": 3, "nourl": 2,
             "never": 0, "auth": 0, "notfound": 1, "expired": 0, "stitched": 2, "objresult": 2,
             "gone": 2, "maintenance": 2, "lostreply": 2, "slowreply": 2}


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
    #          | garbage | ratelimited | auth | notfound | expired | stitched | objresult


def step_for(scenario: Scenario, k: int) -> Step:
    name, n = scenario.name, scenario.n
    if name == "never":
        return Step("generating")
    if name in ("auth", "expired"):
        return Step(name)
    if name == "notfound":
        return Step("notfound" if k <= n else "generating" if k == n + 1 else "success")
    if name == "flaky":
        return Step(("http500", "html502", "garbage")[(k - 1) % 3] if k <= n else "success")
    if name == "ratelimit":
        return Step("ratelimited" if k <= n else "success")
    if name == "nourl":
        return Step("nourl" if k <= n else "success")
    if k <= n:
        return Step("generating")
    finals = {"moderation": "moderation", "upstream": "upstream", "stitched": "stitched",
              "objresult": "objresult"}
    return Step(finals.get(name, "success"))

"""The fake KIE server plays its scripts over real HTTP, in the documented shapes."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from videopoll.fake_provider import FakeProvider, start_in_thread
from videopoll.fake_provider.scenarios import Scenario, parse_scenario
from videopoll.fake_provider.server import FakeServer


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    server = start_in_thread()
    yield server
    server.stop()


def veo(fake: FakeProvider, task: str) -> requests.Response:
    return requests.get(f"{fake.base_url}/api/v1/veo/record-info", params={"taskId": task},
                        timeout=5)


def market(fake: FakeProvider, task: str) -> requests.Response:
    return requests.get(f"{fake.base_url}/api/v1/jobs/recordInfo", params={"taskId": task},
                        timeout=5)


def data(resp: requests.Response) -> Any:
    body = resp.json()
    assert body["code"] == 200, body
    return body["data"]


def test_veo_generate_then_generating_then_a_real_mp4(fake: FakeProvider) -> None:
    resp = requests.post(f"{fake.base_url}/api/v1/veo/generate",
                         json={"prompt": "boat (ok2)", "model": "veo3"}, timeout=5)
    task = resp.json()["data"]["taskId"]
    assert task.startswith("veo_ok2_")
    assert [data(veo(fake, task))["successFlag"] for _ in range(3)] == [0, 0, 1]
    url = data(veo(fake, task))["response"]["resultUrls"][0]
    video = requests.get(url, timeout=5)
    assert video.headers["Content-Type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp" and b"moov" in video.content
    assert fake.stats()["polls"][task] == 4
    assert fake.stats()["downloads"][task] == 1


def test_market_result_json_is_a_string(fake: FakeProvider) -> None:
    resp = requests.post(f"{fake.base_url}/api/v1/jobs/createTask",
                         json={"model": "sora-2-text-to-video", "input": {"prompt": "ok1"}},
                         timeout=5)
    task = resp.json()["data"]["taskId"]
    assert data(market(fake, task))["state"] == "generating"
    done = data(market(fake, task))
    assert done["state"] == "success"
    assert json.loads(done["resultJson"])["resultUrls"][0].endswith(f"/files/{task}.mp4")


def test_moderation_in_both_families(fake: FakeProvider) -> None:
    assert data(veo(fake, "veo_moderation0_a"))["errorCode"] == 400
    failed = data(market(fake, "market_moderation0_a"))
    assert (failed["state"], failed["failCode"]) == ("fail", "422")


def test_flaky_then_success(fake: FakeProvider) -> None:
    answers = [veo(fake, "veo_flaky3_a") for _ in range(4)]
    assert [r.status_code for r in answers] == [500, 502, 200, 200]
    assert answers[1].headers["Content-Type"] == "text/html"
    assert answers[2].text == "not json{{"
    assert data(answers[3])["successFlag"] == 1


def test_rate_limit_says_retry_after(fake: FakeProvider) -> None:
    first = veo(fake, "veo_ratelimit1_a")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "1")
    assert data(veo(fake, "veo_ratelimit1_a"))["successFlag"] == 1


def test_unknown_ids_take_their_scenario_from_the_id(fake: FakeProvider) -> None:
    assert data(veo(fake, "veo_abc456"))["successFlag"] == 0  # default: ok, 2 polls
    assert all(data(veo(fake, "x_never_1"))["successFlag"] == 0 for _ in range(5))


def test_auth_key_is_enforced_when_set() -> None:
    server = start_in_thread(api_key="k")
    try:
        url = f"{server.base_url}/api/v1/chat/credit"
        assert requests.get(url, timeout=5).json()["code"] == 401
        ok = requests.get(url, headers={"Authorization": "Bearer k"}, timeout=5).json()
        assert ok == {"code": 200, "msg": "success", "data": 100}
    finally:
        server.stop()


def test_bad_requests_and_unknown_paths(fake: FakeProvider) -> None:
    blank = requests.post(f"{fake.base_url}/api/v1/veo/generate", json={"prompt": " "},
                          timeout=5)
    assert blank.json()["code"] == 422
    missing = requests.get(f"{fake.base_url}/nope", timeout=5)
    assert (missing.status_code, missing.json()["code"]) == (404, 404)


def submit(fake: FakeProvider, prompt: str, timeout: float = 5) -> requests.Response:
    return requests.post(f"{fake.base_url}/api/v1/veo/generate",
                         json={"prompt": prompt, "model": "veo3"}, timeout=timeout)


def test_submit_faults_and_whether_a_task_was_created(fake: FakeProvider) -> None:
    assert submit(fake, "maintenance").json()["code"] == 455
    assert fake.stats()["submits"] == 0
    lost = submit(fake, "lostreply")
    assert (lost.status_code, lost.json()["code"]) == (500, 500)
    with pytest.raises(requests.ReadTimeout):
        submit(fake, "slowreply1", timeout=0.2)
    assert fake.stats()["submits"] == 2
    assert data(submit(fake, "slowreply0"))["taskId"].startswith("veo_slowreply0_")


def test_not_found_then_running_in_each_familys_words(fake: FakeProvider) -> None:
    assert veo(fake, "veo_notfound1_a").json() == {"code": 422, "msg": "record is null.",
                                                   "data": None}
    assert market(fake, "market_notfound1_a").json()["code"] == 404
    assert data(veo(fake, "veo_notfound1_a"))["successFlag"] == 0
    assert data(veo(fake, "veo_notfound1_a"))["successFlag"] == 1


def test_expired_record(fake: FakeProvider) -> None:
    body = veo(fake, "veo_expired_a").json()
    assert (body["code"], body["msg"]) == (422, "Temporarily supports records within 14 days.")


def test_stitched_extend_and_object_result_json(fake: FakeProvider) -> None:
    response = data(veo(fake, "veo_stitched0_a"))["response"]
    assert response["fullResultUrls"][0].endswith("/files/veo_stitched0_a.mp4")
    assert response["resultUrls"][0].endswith("/files/veo_stitched0_a_segment.mp4")
    result = data(market(fake, "market_objresult0_a"))["resultJson"]
    assert result["resultUrls"][0].endswith("/files/market_objresult0_a.mp4")


@pytest.mark.parametrize(("text", "expected"), [
    ("a cat", Scenario("ok", 2)), ("veo_never_1", Scenario("never", 0)),
    ("moderation3", Scenario("moderation", 3)), ("flaky", Scenario("flaky", 3)),
    ("veo_notfound_x", Scenario("notfound", 1)), ("slowreply", Scenario("slowreply", 2)),
])
def test_scenario_grammar(text: str, expected: Scenario) -> None:
    assert parse_scenario(text) == expected


def test_a_session_keeps_one_connection_and_a_stopped_fake_stops_answering_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Real provider APIs keep connections alive; an outage test must still see a dead one."""
    server = start_in_thread()
    http = server.http
    assert isinstance(http, FakeServer)
    opened: list[socket.socket] = []
    track = http.opened

    def note(conn: socket.socket) -> None:
        opened.append(conn)
        track(conn)

    monkeypatch.setattr(http, "opened", note)
    session = requests.Session()
    try:
        for n in range(5):
            assert data(session.get(f"{server.base_url}/api/v1/veo/record-info",
                                    params={"taskId": f"veo_ok2_keep{n}"}, timeout=5))
        assert len(opened) == 1  # five answers over one kept-alive connection
        # a body too large to read whole must not leave its rest to be parsed as a request
        big = session.post(f"{server.base_url}/api/v1/veo/generate",
                           data=b"x" * (5 * 1024 * 1024), timeout=10)
        assert big.headers.get("Connection") == "close"
        assert session.get(f"{server.base_url}/_fake/stats", timeout=5).status_code == 200
        assert len(opened) == 2  # the next request came on a new connection
    finally:
        server.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{server.base_url}/_fake/stats", timeout=5)

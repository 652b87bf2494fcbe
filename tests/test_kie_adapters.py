"""KIE adapters against ``responses`` and the fake: the right request, the right exception."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import responses

from videopoll.errors import (
    PermanentError,
    RateLimitedError,
    SubmitOutcomeUnknownError,
    TaskNotFoundError,
    TransientError,
)
from videopoll.fake_provider import FakeProvider
from videopoll.models import (
    ErrorCode,
    GenerationSpec,
    JobRecord,
    PollResult,
    PollState,
    ProviderResponse,
)
from videopoll.normalizers import guarded
from videopoll.providers import MODELS, PROVIDERS, get_model, supported_models, validate_options
from videopoll.providers.base import Provider
from videopoll.providers.http import MAX_RESPONSE_BYTES, to_provider_response
from videopoll.providers.kie.shapes import judge

BASE = "https://api.kie.test"
KIE = ["kie_market", "kie_runway", "kie_veo"]
SUBMIT_PATH = {"kie_veo": "/api/v1/veo/generate", "kie_market": "/api/v1/jobs/createTask",
               "kie_runway": "/api/v1/runway/generate"}
FETCH_PATH = {"kie_veo": "/api/v1/veo/record-info", "kie_market": "/api/v1/jobs/recordInfo",
              "kie_runway": "/api/v1/runway/record-detail"}
MODEL_OF = {"kie_veo": "veo3_fast", "kie_market": "sora-2",
            "kie_runway": "kie_runway:runway-gen4"}


def normalize(resp: ProviderResponse) -> PollResult:
    return guarded(resp, judge)


def adapter(family: str) -> Provider:
    return PROVIDERS[family].with_config(base_url=BASE, api_key="kie-secret", timeout=2)


def spec(model: str, images: list[str] | None = None) -> GenerationSpec:
    info = get_model(model)
    return GenerationSpec(model=info.name, prompt="a red fox", aspect_ratio="16:9",
                          duration_seconds=info.default_duration, image_urls=images or [])


@pytest.mark.parametrize("family", KIE)
def test_contract_submit_returns_task_id_with_auth(
    mocked: responses.RequestsMock, family: str
) -> None:
    mocked.post(BASE + SUBMIT_PATH[family],
                json={"code": 200, "msg": "success", "data": {"taskId": "task_1"}})
    model = get_model(MODEL_OF[family])
    assert adapter(family).submit(model, spec(model.qualified), None) == "task_1"
    assert mocked.calls[0].request.headers["Authorization"] == "Bearer kie-secret"


@pytest.mark.parametrize("family", KIE)
def test_contract_fetch_returns_the_raw_answer(
    mocked: responses.RequestsMock, family: str
) -> None:
    mocked.get(BASE + FETCH_PATH[family], json={"code": 200, "data": {"x": 1}}, status=200,
               match=[responses.matchers.query_param_matcher({"taskId": "task_1"})])
    resp = adapter(family).fetch("task_1")
    assert (resp.http_status, resp.body) == (200, {"code": 200, "data": {"x": 1}})


@pytest.mark.parametrize("family", KIE)
def test_contract_connection_error_is_transient(
    mocked: responses.RequestsMock, family: str
) -> None:
    mocked.get(BASE + FETCH_PATH[family], body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError):
        adapter(family).fetch("task_1")


@pytest.mark.parametrize(
    ("status", "payload", "headers", "raises", "code"),
    [
        (200, {"code": 401, "msg": "You do not have access permissions"}, {}, PermanentError,
         ErrorCode.PROVIDER_AUTH_FAILED),
        (200, {"code": 402, "msg": "Credits insufficient"}, {}, PermanentError,
         ErrorCode.INSUFFICIENT_CREDITS),
        (429, {"code": 429, "msg": "Rate limit exceeded"}, {"Retry-After": "3"},
         RateLimitedError, None),
        (200, {"code": 422, "msg": "Your prompt was flagged by Website as violating content "
                                   "policies."}, {}, PermanentError,
         ErrorCode.MODERATION_REJECTED),
        (200, {"code": 422, "msg": "prompt is too long"}, {}, PermanentError,
         ErrorCode.VALIDATION_FAILED),
        (200, {"code": 455, "msg": "Service maintenance"}, {}, RateLimitedError, None),
        # KIE Runway's capacity answer: not accepted, retry with backoff (providers.md §10.2)
        (200, {"code": 400, "msg": "Reached the limit for concurrent generations."}, {},
         RateLimitedError, None),
        (503, None, {}, SubmitOutcomeUnknownError, None),
    ],
)
def test_submit_error_mapping(
    mocked: responses.RequestsMock, status: int, payload: object, headers: dict[str, str],
    raises: type[Exception], code: ErrorCode | None,
) -> None:
    mocked.post(BASE + SUBMIT_PATH["kie_veo"], status=status, headers=headers,
                body=json.dumps(payload) if payload else "<html>down</html>")
    with pytest.raises(raises) as info:
        adapter("kie_veo").submit(get_model("veo3"), spec("veo3"), None)
    assert type(info.value) is raises
    if code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == code
    if headers:
        assert isinstance(info.value, RateLimitedError) and info.value.retry_after == 3


def test_veo_submit_body(mocked: responses.RequestsMock) -> None:
    mocked.post(BASE + SUBMIT_PATH["kie_veo"], json={"code": 200, "data": {"taskId": "v1"}})
    adapter("kie_veo").submit(get_model("veo3"), spec("veo3", ["https://x/a.png"]),
                              "https://me/cb")
    sent = json.loads(mocked.calls[0].request.body or b"{}")
    assert sent["model"] == "veo3"
    assert sent["aspect_ratio"] == sent["aspectRatio"] == "16:9"
    assert sent["imageUrls"] == ["https://x/a.png"]
    assert sent["callBackUrl"] == "https://me/cb"


@pytest.mark.parametrize(
    ("model", "images", "provider_id", "field", "value"),
    [
        ("sora-2", [], "sora-2-text-to-video", "aspect_ratio", "landscape"),
        ("sora-2", ["https://x/a.png"], "sora-2-image-to-video", "image_urls",
         ["https://x/a.png"]),
        ("sora-2-pro", [], "sora-2-pro-text-to-video", "n_frames", "10"),
        ("seedance-1.5-pro", ["https://x/a.png"], "bytedance/seedance-1.5-pro", "input_urls",
         ["https://x/a.png"]),
        ("seedance-2", ["https://x/a.png"], "bytedance/seedance-2", "first_frame_url",
         "https://x/a.png"),
    ],
)
def test_market_submit_body(
    mocked: responses.RequestsMock, model: str, images: list[str], provider_id: str,
    field: str, value: object,
) -> None:
    mocked.post(BASE + SUBMIT_PATH["kie_market"], json={"code": 200, "data": {"taskId": "m1"}})
    adapter("kie_market").submit(get_model(model), spec(model, images), None)
    sent = json.loads(mocked.calls[0].request.body or b"{}")
    assert sent["model"] == provider_id
    assert sent["input"]["prompt"] == "a red fox"
    assert sent["input"][field] == value


def test_registry_lists_every_model_once() -> None:
    names = supported_models()
    assert len(names) == len(set(names)) == len({id(m) for m in MODELS.values()})
    assert all(get_model(name).qualified in MODELS for name in names)
    assert {m.family for m in MODELS.values()} <= set(PROVIDERS)
    # a model another family serves under the same name is reachable only qualified
    assert get_model("kie_market:kling-2.6").family == "kie_market"
    assert "kie_market:kling-2.6" in names


@pytest.mark.parametrize(
    ("model", "aspect", "duration", "images", "fields"),
    [
        ("veo3", "16:9", 8, 2, []),
        ("veo3", "1:1", 8, 0, ["aspectRatio"]),
        ("veo3", "16:9", 5, 3, ["durationSeconds", "imageUrls"]),
        ("sora-2", "9:16", None, 1, []),
        ("seedance-2", "1:1", 10, 2, ["imageUrls"]),
    ],
)
def test_validate_options(
    model: str, aspect: str, duration: int | None, images: int, fields: list[str]
) -> None:
    problems = validate_options(get_model(model), aspect, duration, images)
    assert [f for f, _ in problems] == fields


# --- submit: which failures prove the request was not accepted (billing, invariant 9) -------

UNKNOWN = SubmitOutcomeUnknownError
DOC_SUBMIT_TEXT = {
    400: "Please enter a valid prompt", 401: "You do not have access permissions",
    402: "Credits insufficient", 404: "The original video or task does not exist",
    408: "Upstream is currently experiencing service issues. No result has been returned for "
         "over 10 minutes.",
    422: "prompt is required", 429: "Rate limit exceeded",
    451: "Failed to fetch the image. Kindly verify any access limits set by you or your "
         "service provider.",
    455: "Service unavailable", 500: "Server Error", 501: "Failed - Video generation task failed",
    505: "The feature is disabled",
}
# code → (exception, taxonomy code); every row but the unknown ones proves "not accepted".
SUBMIT_TABLE: list[tuple[int, type[Exception], ErrorCode | None]] = [
    (400, PermanentError, ErrorCode.VALIDATION_FAILED),
    (401, PermanentError, ErrorCode.PROVIDER_AUTH_FAILED),
    (402, PermanentError, ErrorCode.INSUFFICIENT_CREDITS),
    (404, PermanentError, ErrorCode.VALIDATION_FAILED),
    (408, UNKNOWN, None),
    (422, PermanentError, ErrorCode.VALIDATION_FAILED),
    (429, RateLimitedError, None),
    (451, PermanentError, ErrorCode.ASSET_FETCH_FAILED),
    (455, RateLimitedError, None),
    (500, UNKNOWN, None),
    (501, PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
    (505, PermanentError, ErrorCode.UNKNOWN_PROVIDER_ERROR),
]


@pytest.mark.parametrize("family", KIE)
@pytest.mark.parametrize("where", ["body", "http"])
@pytest.mark.parametrize(("code", "raises", "error_code"), SUBMIT_TABLE)
def test_every_documented_code_on_submit(
    mocked: responses.RequestsMock, family: str, where: str, code: int,
    raises: type[Exception], error_code: ErrorCode | None,
) -> None:
    mocked.post(BASE + SUBMIT_PATH[family], status=code if where == "http" else 200,
                json={"code": code, "msg": DOC_SUBMIT_TEXT[code], "data": None})
    model = get_model(MODEL_OF[family])
    with pytest.raises(raises) as info:
        adapter(family).submit(model, spec(model.qualified), None)
    assert type(info.value) is raises
    if error_code is not None:
        assert isinstance(info.value, PermanentError) and info.value.code == error_code


@pytest.mark.parametrize("family", KIE)
@pytest.mark.parametrize(
    ("status", "body", "raises"),
    [
        (200, "not json{{", UNKNOWN),
        (200, json.dumps({"ok": True}), UNKNOWN),  # JSON, but not a KIE envelope
        (200, json.dumps({"code": 200, "msg": "success", "data": None}), UNKNOWN),
        (200, json.dumps({"code": 200, "msg": "success", "data": {"taskId": ""}}), UNKNOWN),
        (200, json.dumps({"code": 200, "msg": "success", "data": {"taskId": {"a": 1}}}),
         UNKNOWN),
        (200, json.dumps({"code": "200", "msg": "success", "data": {"taskId": 42}}), None),
        (502, "<html><body>Bad Gateway</body></html>", UNKNOWN),
        (504, "", UNKNOWN),
        (200, "x" * (MAX_RESPONSE_BYTES + 1), UNKNOWN),
        (200, requests.ReadTimeout("read timed out"), UNKNOWN),
        (200, requests.ConnectionError("Connection aborted."), UNKNOWN),  # sent, then dropped
        (200, requests.ConnectTimeout("connect timed out"), TransientError),  # never sent
    ],
)
def test_submit_faults_say_whether_the_task_may_exist(
    mocked: responses.RequestsMock, family: str, status: int, body: str | Exception,
    raises: type[Exception] | None,
) -> None:
    mocked.post(BASE + SUBMIT_PATH[family], status=status, body=body)
    model = get_model(MODEL_OF[family])
    if raises is None:
        assert adapter(family).submit(model, spec(model.qualified), None) == "42"
        return
    with pytest.raises(raises) as info:
        adapter(family).submit(model, spec(model.qualified), None)
    assert type(info.value) is raises


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Silent:
    """A real TCP server that reads the request and then never answers, or hangs up."""

    def __init__(self, hang_up: bool) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.hang_up = hang_up
        self.received: list[bytes] = []
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.received.append(conn.recv(65536))
            if self.hang_up:
                conn.close()
            else:
                self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture(params=[False, True], ids=["silent", "hangs-up"])
def silent(request: pytest.FixtureRequest) -> Iterator[_Silent]:
    server = _Silent(hang_up=request.param)
    yield server
    server.close()


def test_deeply_nested_json_is_not_json_rather_than_a_crash() -> None:
    resp = to_provider_response(200, b"[" * 100_000 + b"]" * 100_000, None)
    assert resp.body is None and resp.text_sample.startswith("[[[")


# --- the same answers from the real fake server ---------------------------------------------

def fake_adapter(fake: FakeProvider, family: str, timeout: float = 5) -> Provider:
    return PROVIDERS[family].with_config(base_url=fake.base_url, api_key=None, timeout=timeout)


def submit_to(fake: FakeProvider, family: str, prompt: str, timeout: float = 5) -> str:
    model = get_model(MODEL_OF[family])
    job = spec(model.qualified).model_copy(update={"prompt": prompt})
    return fake_adapter(fake, family, timeout).submit(model, job, None)


@pytest.mark.parametrize("family", KIE)
def test_fake_submit_faults(fake: FakeProvider, family: str) -> None:
    fake.reset()
    with pytest.raises(RateLimitedError):
        submit_to(fake, family, "a fox (maintenance)")
    assert fake.stats()["submits"] == 0  # 455: provably not accepted, safe to retry
    with pytest.raises(SubmitOutcomeUnknownError):
        submit_to(fake, family, "a fox (lostreply)")
    with pytest.raises(SubmitOutcomeUnknownError):
        submit_to(fake, family, "a fox (slowreply2)", timeout=0.5)
    assert fake.stats()["submits"] == 2  # both created a (paid) task despite the error


@pytest.mark.parametrize("family", KIE)
def test_fake_brand_new_task_is_not_found_then_runs(fake: FakeProvider, family: str) -> None:
    provider = fake_adapter(fake, family)
    task = f"{family}_notfound1_x"
    with pytest.raises(TaskNotFoundError):
        normalize(provider.fetch(task))
    assert normalize(provider.fetch(task)).state is PollState.RUNNING
    assert normalize(provider.fetch(task)).state is PollState.SUCCEEDED


@pytest.mark.parametrize("family", KIE)
def test_fake_expired_task_fails_for_good(fake: FakeProvider, family: str) -> None:
    with pytest.raises(PermanentError) as info:
        normalize(fake_adapter(fake, family).fetch(f"{family}_expired_x"))
    assert info.value.code == ErrorCode.TASK_NOT_FOUND


def veo_job(task_id: str, extends: str | None = None, variant: str | None = None) -> JobRecord:
    spec = GenerationSpec(model="veo3_fast", prompt="on", extend_task_id=extends)
    return JobRecord(job_id="job_1", kind="generate", model="veo3_fast", family="kie_veo",
                     session_id="s", deadline_at=time.time() + 60, spec=spec,
                     provider_task_id=task_id, variant=variant)


def test_fake_extend_delivers_the_stitched_video(fake: FakeProvider) -> None:
    provider, task = fake_adapter(fake, "kie_veo"), "veo_stitched0_x"
    result = normalize(provider.status_of(veo_job(task, extends="veo_parent")))
    assert result.output_urls == [f"{fake.base_url}/files/{task}.mp4"]
    assert requests.get(result.output_urls[0], timeout=5).content[4:8] == b"ftyp"


@pytest.mark.parametrize(("extends", "video"), [
    (None, "http://example.com/video1.mp4"),  # resultUrls is the video (§1.3)
    ("veo_parent", "http://example.com/full_result.mp4"),  # an extend's stitched video (§1.8)
])
def test_veo_delivers_result_urls_and_an_extend_its_full_result(
    mocked: responses.RequestsMock, extends: str | None, video: str
) -> None:
    record = {"taskId": "task_1", "successFlag": 1, "errorCode": None, "errorMessage": "",
              "response": {"taskId": "task_1", "resultUrls": ["http://example.com/video1.mp4"],
                           "originUrls": ["http://example.com/original_video1.mp4"],
                           "fullResultUrls": ["http://example.com/full_result.mp4"]}}
    mocked.get(BASE + FETCH_PATH["kie_veo"], json={"code": 200, "msg": "success", "data": record})
    result = normalize(adapter("kie_veo").status_of(veo_job("task_1", extends)))
    assert (result.state, result.output_urls) == (PollState.SUCCEEDED, [video])


def test_fake_market_result_json_as_object(fake: FakeProvider) -> None:
    task = "market_objresult0_x"
    result = normalize(fake_adapter(fake, "kie_market").fetch(task))
    assert (result.state, result.output_urls) == (
        PollState.SUCCEEDED, [f"{fake.base_url}/files/{task}.mp4"])


class _Trickle(threading.Thread):
    """A real server that sends headers, then its body one byte every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.recv(65536)
            body = b'{"code": 200, "msg": "success", "data": {"taskId": "t"}}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body))
            for byte in body:
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(0.2)


@pytest.mark.parametrize("family", ["kie_veo", "kie_market"])
def test_a_provider_that_trickles_its_answer_is_cut_off(family: str) -> None:
    """Each read is quick, so requests' timeout never fires; the wall bound does."""
    server = _Trickle()
    server.start()
    provider = PROVIDERS[family].with_config(base_url=server.url, api_key="k", timeout=0.5)
    began = time.monotonic()
    with pytest.raises(TransientError, match="too long"):
        provider.fetch("t")
    assert time.monotonic() - began < 3  # 2 x timeout, not the 11 s the body would take


@pytest.mark.parametrize("code", [500, 200])
def test_veo_4k_unavailable_fails_the_job_at_once(
    mocked: responses.RequestsMock, code: int
) -> None:
    text = "The 4K version of this video is unavailable. Please try a different video."
    mocked.post(BASE + "/api/v1/veo/get-4k-video",
                json={"code": code, "msg": text, "data": None})
    result = normalize(adapter("kie_veo").status_of(veo_job("task_1", variant="4k")))
    assert (result.state, result.error_code) == (PollState.FAILED,
                                                 ErrorCode.UNKNOWN_PROVIDER_ERROR)
    assert text in result.provider_message


def runway_record(state: str, **fields: object) -> ProviderResponse:
    data = {"taskId": "task_1", "state": state, **fields}
    return ProviderResponse(http_status=200, body={"code": 200, "msg": "success", "data": data})


@pytest.mark.parametrize(("record", "state", "code", "urls"), [
    # its own spellings, with no videoInfo yet: queued, not Market's "unknown state"
    (runway_record("wait"), PollState.QUEUED, None, []),
    (runway_record("queueing"), PollState.QUEUED, None, []),
    (runway_record("generating"), PollState.RUNNING, None, []),
    (runway_record("success", videoInfo={"videoUrl": "https://cdn.example/v.mp4"}),
     PollState.SUCCEEDED, None, ["https://cdn.example/v.mp4"]),
    # expireFlag=1: the video is gone (providers.md §10.1), so no poll can bring it back
    (runway_record("success", expireFlag=1, videoInfo={"videoUrl": "https://cdn.example/v"}),
     PollState.FAILED, ErrorCode.OUTPUT_MISSING, []),
    (runway_record("fail", failCode=400, failMsg="Reached the limit for concurrent generations.",
                   videoInfo=None), PollState.FAILED, ErrorCode.PROVIDER_RATE_LIMITED, []),
])
def test_kie_runway_records_are_read_by_runways_own_parser(
    record: ProviderResponse, state: PollState, code: ErrorCode | None, urls: list[str]
) -> None:
    result = adapter("kie_runway").normalize(record)
    assert (result.state, result.error_code, result.output_urls) == (state, code, urls)
    assert result.parser == "kie_runway_record"

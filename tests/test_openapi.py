"""/openapi.json is a valid OpenAPI 3 document of every route, and what it promises is what the
app answers: each documented status of the sampled endpoints is provoked for real and its
body checked against the documented schema."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from pydantic import SecretStr
from werkzeug.test import TestResponse

from videopoll.api import body, create_app
from videopoll.runtime import build_runtime
from videopoll.settings import Settings

SAMPLED = ("POST /webhook/poll-video", "GET /jobs/{job_id}", "POST /jobs/{job_id}/cancel")


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as c:
        yield c


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    document: dict[str, Any] = resp.get_json()
    return document


def test_the_document_is_valid_openapi_3(spec: dict[str, Any]) -> None:
    validate(spec)  # raises on any schema or reference error
    assert spec["openapi"].startswith("3.")


def test_every_route_is_documented_and_nothing_else(app: Flask, spec: dict[str, Any]) -> None:
    routes = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules()
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert routes == documented


def test_every_error_status_shares_one_json_shape(spec: dict[str, Any]) -> None:
    shared = spec["components"]["responses"]
    statuses = {status for ops in spec["paths"].values() for op in ops.values()
                for status, answer in op["responses"].items() if "$ref" in answer}
    assert {"400", "401", "404", "408", "409", "413", "415", "422", "503"} <= statuses
    assert shared["ValidationFailed"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationErrorBody"}
    problem = spec["components"]["schemas"]["FieldProblem"]
    assert set(problem["required"]) == {"field", "reason"}


class Checker:
    """Checks answers against the document and remembers which statuses each route gave."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.seen: dict[str, set[str]] = {}

    def __call__(self, route: str, resp: TestResponse) -> TestResponse:
        method, path = route.split(" ", 1)
        responses = self.spec["paths"][path][method.lower()]["responses"]
        status = str(resp.status_code)
        assert status in responses, f"{route} answered {status}, not documented: {resp.text}"
        self.seen.setdefault(route, set()).add(status)
        answer = responses[status]
        if "$ref" in answer:
            answer = self.spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
        for header in answer.get("headers", {}):
            assert header in resp.headers, f"{route} {status} lacks {header}"
        content = answer.get("content", {})
        if content:
            assert resp.mimetype in content, f"{route} {status} answered {resp.mimetype}"
        if resp.mimetype == "application/json":
            schema = {**content["application/json"]["schema"],
                      "components": self.spec["components"]}
            OAS31Validator(schema).validate(resp.get_json())
        return resp


def test_the_sampled_endpoints_answer_every_status_as_documented(
    settings: Settings, client: FlaskClient, spec: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    check = Checker(spec)
    poll = {"sessionId": "s", "taskId": f"veo_never_{uuid.uuid4().hex[:8]}", "model": "veo3"}
    submit = "POST /webhook/poll-video"
    job_id = check(submit, client.post("/webhook/poll-video", json=poll)).get_json()["jobId"]
    check(submit, client.post("/webhook/poll-video", json=poll))  # 200: already tracking
    check(submit, client.post("/webhook/poll-video", data="{bad", content_type="application/json"))
    check(submit, client.post("/webhook/poll-video", json={**poll, "attempt": 0}))
    check(submit, client.post("/webhook/poll-video", data="sessionId=s",
                              content_type="application/x-www-form-urlencoded"))
    check(submit, client.post("/webhook/poll-video", data="x" * (settings.max_body_bytes + 1),
                              content_type="application/json"))
    with monkeypatch.context() as slow:
        slow.setattr(body, "BODY_DEADLINE_SECONDS", -1.0)  # as if the body trickled in
        check(submit, client.post("/webhook/poll-video", json=poll))

    check("GET /jobs/{job_id}", client.get(f"/jobs/{job_id}"))
    check("GET /jobs/{job_id}", client.get("/jobs/job_nope"))
    cancel = "POST /jobs/{job_id}/cancel"
    check(cancel, client.post(f"/jobs/{job_id}/cancel"))
    check(cancel, client.post(f"/jobs/{job_id}/cancel"))  # 409: already canceled
    check(cancel, client.post("/jobs/job_nope/cancel"))

    secured = create_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}))
    down = build_runtime(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    for other in (secured, create_app(settings, runtime=down)):  # 401, then 503
        with other.test_client() as c:
            check(submit, c.post("/webhook/poll-video", json=poll))
            check(cancel, c.post(f"/jobs/{job_id}/cancel"))
            check("GET /jobs/{job_id}", c.get(f"/jobs/{job_id}"))

    for route in SAMPLED:
        method, path = route.split(" ", 1)
        documented = set(spec["paths"][path][method.lower()]["responses"]) - {"default"}
        assert check.seen[route] == documented, route


def test_other_endpoints_answer_as_documented(client: FlaskClient, spec: dict[str, Any]
                                              ) -> None:
    check = Checker(spec)
    check("GET /models", client.get("/models"))
    check("GET /healthz", client.get("/healthz"))
    check("GET /metrics", client.get("/metrics"))
    check("GET /openapi.json", client.get("/openapi.json"))
    check("GET /docs", client.get("/docs"))
    check("GET /videos/{key}", client.get("/videos/videos/veo3/2025/01/job_nope.mp4"))
    check("POST /callbacks/{family}", client.post("/callbacks/nope", json={}))
    check("POST /telegram/webhook", client.post("/telegram/webhook", json={}))


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/metrics"])
def test_the_document_and_metrics_need_the_token_like_the_rest(
    settings: Settings, path: str
) -> None:
    app = create_app(settings.model_copy(update={"api_token": SecretStr("s3cret")}))
    with app.test_client() as c:
        assert c.get(path).status_code == 401
        assert c.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_docs_page_shows_every_endpoint_and_needs_no_network(
    client: FlaskClient, spec: dict[str, Any]
) -> None:
    resp = client.get("/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    page = html.unescape(resp.text)
    for path, ops in spec["paths"].items():
        assert path in page
        for op in ops.values():
            assert op["summary"].split("`")[0] in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)  # nothing fetched
    assert "<script" not in page
    assert 'id="schema-ValidationErrorBody"' in page

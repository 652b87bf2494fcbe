"""The status page's access rule, with Flask's test client: a signed link opens one job's page
and nothing else; without one, the API's own rule (bearer token, or loopback without one).
What a browser renders of it is in ``tests/e2e/test_view_browser.py``."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from tests.test_store import make_job
from videopoll.api import create_app
from videopoll.api.view import PAGE_FIELDS
from videopoll.models import JobRecord, JobStatus
from videopoll.runtime import Runtime
from videopoll.settings import Settings
from videopoll.view_links import view_token

TOKEN = "api-token-for-view-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def app_with(settings: Settings, **update: object) -> Flask:
    return create_app(settings.model_copy(update=update))


def store_job(app: Flask, job_id: str, status: JobStatus = JobStatus.RUNNING,
              key: str | None = None, progress: int | None = None) -> None:
    rt: Runtime = app.extensions["videopoll"]
    job = make_job(rt, job_id, keys=[])
    job.metadata = {"customer": "private-note"}
    rt.store.create(job)

    def move(j: JobRecord) -> None:
        j.status, j.attempts, j.progress = status, 3, progress
        j.delivery.storage_key = key

    rt.store.update(job_id, move)


def page_path(client: FlaskClient, job_id: str) -> str:
    """The ``viewUrl`` of ``GET /jobs/<id>``, as a path and query for the test client."""
    view = client.get(f"/jobs/{job_id}", headers=BEARER).get_json()
    parts = urlsplit(view["viewUrl"])
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@pytest.fixture
def guarded(settings: Settings) -> FlaskClient:
    app = app_with(settings, api_token=SecretStr(TOKEN))
    store_job(app, "job_a", progress=40)
    store_job(app, "job_b")
    return app.test_client()


def test_the_view_url_opens_the_page_without_a_bearer(guarded: FlaskClient) -> None:
    path = page_path(guarded, "job_a")
    assert path.startswith("/jobs/job_a/view?token=")
    page = guarded.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Your video is being generated." in html and "Progress: 40%" in html
    assert "Checks: 3 / 15" in html
    assert "private-note" not in html  # metadata is the caller's, not the viewer's
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the URL holds the token
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_the_page_refreshes_from_a_subset_of_the_job(guarded: FlaskClient) -> None:
    path = page_path(guarded, "job_a").replace("/view?", "/view.json?")
    data = guarded.get(path).get_json()
    full = guarded.get("/jobs/job_a", headers=BEARER).get_json()
    assert set(data) == set(PAGE_FIELDS)
    assert all(data[k] == full[k] for k in PAGE_FIELDS)
    assert "metadata" not in data and "providerTaskId" not in data


def test_a_link_opens_its_own_job_only_and_never_the_api(guarded: FlaskClient) -> None:
    query = page_path(guarded, "job_a").split("?", 1)[1]
    assert guarded.get(f"/jobs/job_b/view?{query}").status_code == 401
    assert guarded.get(f"/jobs/job_b/view.json?{query}").status_code == 401
    assert guarded.get(f"/jobs/job_a?{query}").status_code == 401  # the API wants the bearer
    refused = guarded.get(f"/jobs/job_b/view?{query}").get_data(as_text=True)
    assert "invalid or has expired" in refused and "Checks" not in refused


@pytest.mark.parametrize("token", [
    "", "garbage", "99999999999.", "99999999999.AAAA", "1.abc",
])
def test_malformed_tokens_are_refused(guarded: FlaskClient, token: str) -> None:
    assert guarded.get(f"/jobs/job_a/view.json?token={token}").status_code == 401


def test_an_expired_or_tampered_link_is_refused(guarded: FlaskClient,
                                                settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    old = view_token(keyed, "job_a", now=time.time() - keyed.view_link_seconds - 5)
    assert old is not None
    assert guarded.get(f"/jobs/job_a/view.json?token={old}").status_code == 401
    fresh = view_token(keyed, "job_a")
    assert fresh is not None
    assert guarded.get(f"/jobs/job_a/view.json?token={fresh}").status_code == 200
    expires, sig = fresh.split(".")
    later = f"{int(expires) + 3600}.{sig}"  # a longer life is not the signer's
    assert guarded.get(f"/jobs/job_a/view.json?token={later}").status_code == 401


def test_without_a_link_the_bearer_rule_holds(guarded: FlaskClient) -> None:
    assert guarded.get("/jobs/job_a/view").status_code == 401
    assert guarded.get("/jobs/job_a/view", headers=BEARER).status_code == 200
    assert guarded.get("/jobs/job_a/view.json", headers=BEARER).get_json()["jobId"] == "job_a"


def test_view_secret_signs_links_and_api_token_links_stop_working(settings: Settings) -> None:
    app = app_with(settings, api_token=SecretStr(TOKEN), view_secret=SecretStr("view-key"))
    store_job(app, "job_a")
    client = app.test_client()
    by_api_token = view_token(settings.model_copy(update={"api_token": SecretStr(TOKEN)}),
                              "job_a")
    assert client.get(f"/jobs/job_a/view.json?token={by_api_token}").status_code == 401
    assert client.get(page_path(client, "job_a")).status_code == 200


def test_an_unknown_job_is_a_404_page(guarded: FlaskClient, settings: Settings) -> None:
    token = view_token(settings.model_copy(update={"api_token": SecretStr(TOKEN)}), "job_gone")
    page = guarded.get(f"/jobs/job_gone/view?token={token}")
    assert page.status_code == 404 and "no longer available" in page.get_data(as_text=True)


def test_without_secrets_pages_open_on_loopback_only(settings: Settings) -> None:
    app = app_with(settings, api_token=None, view_secret=None)
    store_job(app, "job_a")
    client = app.test_client()
    assert page_path(client, "job_a") == "/jobs/job_a/view"  # nothing to sign with
    assert client.get("/jobs/job_a/view").status_code == 200
    remote = client.get("/jobs/job_a/view", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert remote.status_code == 401 and "loopback" in remote.get_data(as_text=True)
    assert client.get("/jobs/job_a/view.json?token=1.x").status_code == 401


def test_a_succeeded_page_plays_the_stored_video(settings: Settings) -> None:
    app = app_with(settings, api_token=None, public_base_url="https://videos.example")
    store_job(app, "job_ok", JobStatus.SUCCEEDED, key="videos/veo3/job_ok.mp4")
    client = app.test_client()
    view = client.get("/jobs/job_ok").get_json()
    assert view["viewUrl"] == "https://videos.example/jobs/job_ok/view"  # for people outside
    html = client.get("/jobs/job_ok/view").get_data(as_text=True)
    assert '<video id="video"' in html
    assert 'src="http://localhost/videos/videos/veo3/job_ok.mp4"' in html
    assert "<script" not in html  # a finished page has nothing left to refresh

"""Signed callbacks (Standard Webhooks) against a real HTTP listener on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.listeners import Listener
from videopoll.errors import DeliveryError, NotifyError
from videopoll.webhooks import (
    WebhookError,
    build_payload,
    message_id,
    retry_delay,
    send_callback,
)

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_" + "c2VjcmV0LWJlZm9yZS1yb3RhdGlvbg=="
VIEW = {"jobId": "job-1", "status": "succeeded", "outputUrl": "https://cdn.example/v.mp4"}


def send(url: str, event: str = "succeeded", secret: str | None = SECRET, **kw: object) -> int:
    return send_callback(url, event, build_payload(VIEW, event), secret, timeout=5,
                         allow_private=True, **kw)  # type: ignore[arg-type]


def test_the_callback_verifies_with_the_standard_webhooks_verifier(listener: Listener) -> None:
    assert send(listener.url + "/resume/abc") == 200
    [got] = listener.received
    assert got.path == "/resume/abc"
    body = Webhook(SECRET).verify(got.body, got.headers)
    assert body["type"] == "video.succeeded" and body["data"] == VIEW
    assert body["timestamp"].endswith("Z")
    assert got.headers["webhook-id"] == message_id("job-1", "succeeded")
    assert got.headers["Content-Type"] == "application/json"
    with pytest.raises(WebhookVerificationError):  # a different secret does not verify
        Webhook(OLD_SECRET).verify(got.body, got.headers)


def test_a_retried_send_carries_the_same_webhook_id(listener: Listener) -> None:
    listener.statuses = [500]
    with pytest.raises(WebhookError) as caught:
        send(listener.url)
    assert not caught.value.permanent and caught.value.status == 500
    assert send(listener.url) == 200
    first, second = listener.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "job-1.succeeded"
    for got in listener.received:  # each attempt signed afresh, so neither is stale
        Webhook(SECRET).verify(got.body, got.headers)


def test_each_event_and_button_has_its_own_id(listener: Listener) -> None:
    send(listener.url, "failed")
    send(listener.url, "button", msg_id=message_id("job-1", "button", "pub"))
    ids = [r.headers["webhook-id"] for r in listener.received]
    assert ids == ["job-1.failed", "job-1.button.pub"]
    assert json.loads(listener.received[1].body)["type"] == "video.button"


@pytest.mark.parametrize(("status", "permanent"), [
    (400, True), (401, True), (404, True), (410, True), (422, True),
    (408, False), (429, False), (500, False), (502, False), (503, False),
])
def test_what_a_status_means_for_a_retry(listener: Listener, status: int,
                                          permanent: bool) -> None:
    listener.statuses = [status]
    with pytest.raises(WebhookError) as caught:
        send(listener.url)
    assert (caught.value.status, caught.value.permanent) == (status, permanent)
    assert isinstance(caught.value, NotifyError) and isinstance(caught.value, DeliveryError)


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), ("0", 0.0), ("99999", 3600.0), ("soon", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: now
])
def test_retry_after_is_read_and_bounded(listener: Listener, header: str,
                                         seconds: float | None) -> None:
    listener.statuses, listener.headers = [429], {"Retry-After": header}
    with pytest.raises(WebhookError) as caught:
        send(listener.url)
    assert caught.value.retry_after == seconds


def test_a_redirect_is_not_followed(listener: Listener) -> None:
    elsewhere = Listener()
    try:
        listener.statuses, listener.headers = [307], {"Location": elsewhere.url + "/x"}
        with pytest.raises(WebhookError) as caught:
            send(listener.url)
        assert caught.value.permanent and caught.value.status == 307
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_a_private_address_is_refused_unless_allowed(listener: Listener) -> None:
    with pytest.raises(WebhookError) as caught:
        send_callback(listener.url, "succeeded", build_payload(VIEW, "succeeded"), SECRET,
                      timeout=5, allow_private=False)
    assert caught.value.permanent and "non-public" in caught.value.reason
    assert listener.received == []
    with pytest.raises(WebhookError) as caught:
        send_callback("file:///etc/passwd", "succeeded", {}, SECRET, timeout=5,
                      allow_private=True, msg_id="x")
    assert caught.value.permanent


def test_a_name_that_rebinds_to_a_private_address_is_caught_at_connect(
    listener: Listener, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import videopoll.webhooks

    # the name looked public when checked; the connection then lands on loopback
    monkeypatch.setattr(videopoll.webhooks, "check_url", lambda _url, _allow: None)
    with pytest.raises(WebhookError) as caught:
        send_callback(listener.url, "succeeded", build_payload(VIEW, "succeeded"), SECRET,
                      timeout=5, allow_private=False)
    assert caught.value.permanent and "connected to non-public" in caught.value.reason
    assert listener.received == []


def test_nobody_listening_is_retryable_and_the_reason_hides_the_url() -> None:
    gone = Listener()
    url = gone.url + "/webhook-waiting/123?signature=s3cr3t"
    gone.stop()
    with pytest.raises(WebhookError) as caught:
        send(url)
    assert not caught.value.permanent and caught.value.status == 0
    assert "s3cr3t" not in str(caught.value.args)


def test_unsigned_when_no_secret_unless_a_signature_is_required(listener: Listener) -> None:
    assert send(listener.url, secret=None) == 200
    assert "webhook-signature" not in listener.received[0].headers
    assert listener.received[0].headers["webhook-id"] == "job-1.succeeded"
    with pytest.raises(WebhookError) as caught:
        send(listener.url, secret=None, require_signature=True)
    assert caught.value.permanent and "CALLBACK_SECRET" in caught.value.reason
    assert len(listener.received) == 1


def test_a_malformed_secret_is_a_permanent_error_that_does_not_echo_it(
    listener: Listener,
) -> None:
    with pytest.raises(WebhookError) as caught:
        send(listener.url, secret="whsec_%%%not-base64%%%")
    assert caught.value.permanent and "not-base64" not in str(caught.value.args)
    assert listener.received == []


def test_two_secrets_sign_twice_so_a_receiver_can_rotate(listener: Listener) -> None:
    send(listener.url, secret=f"{SECRET} {OLD_SECRET}")
    [got] = listener.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OLD_SECRET):  # the receiver verifies with either
        Webhook(secret).verify(got.body, got.headers)


def test_the_payload_shape() -> None:
    for event in ("succeeded", "failed", "canceled", "button"):
        payload = build_payload(VIEW, event)
        assert payload["type"] == f"video.{event}" and payload["data"] == VIEW
    with pytest.raises(ValueError):
        build_payload(VIEW, "delayed")


def test_the_error_survives_pickling() -> None:
    import pickle

    err = WebhookError("callback answered HTTP 429", status=429, retry_after=3.0)
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.status, back.permanent, back.retry_after) == (
        err.reason, 429, False, 3.0)


def test_retry_delays_grow_with_jitter_and_honour_retry_after() -> None:
    for retries, low, high in [(0, 1, 2), (1, 2, 4), (3, 8, 16), (10, 60, 120), (99, 60, 120)]:
        delays = {retry_delay(retries) for _ in range(50)}
        assert all(low <= d <= high for d in delays) and len(delays) > 1
    assert retry_delay(0, retry_after=30.0) == 30.0  # the receiver said when

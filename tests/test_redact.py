from __future__ import annotations

import pytest

from videopoll.redact import redact


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer sk-live-abc123", "sk-live-abc123"),
        ("https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/send", "AAHdqT"),
        ("https://cdn.example.com/v.mp4?X-Amz-Signature=deadbeef&X-Amz-Credential=k", "deadbeef"),
        ('{"api_key": "kie-123456"}', "kie-123456"),
        ("token=abc.def.ghi", "abc.def.ghi"),
        ("error connecting to redis://:s3cretpw@10.0.0.5:6379/0", "s3cretpw"),
        ("GET https://alice:hunter22@files.example/v.mp4", "hunter22"),
        ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
        ("headers={'Authorization': 'Key fal-abcdef123456'}", "fal-abcdef123456"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "bPxRfiCY"),
        ("using key AKIAIOSFODNN7EXAMPLE for s3", "AKIAIOSFODNN7EXAMPLE"),
        ("openai said: invalid key sk-proj-Abc123Def456Ghi789", "Abc123Def456Ghi789"),
        ("key sk-abcdefghijklmnop1234 rejected", "abcdefghijklmnop1234"),
        ("CALLBACK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8I"),
        ("password: 'p@ss w0rd'", "p@ss"),
        # a key shape alone, with no name in front that gives it away
        ("signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw failed", "MfKQ9r8GKYqrTwjUPD8I"),
        ("getMe 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw -> 401", "AAHdqTcvCH1vGWJ"),
        ("veo refused AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890"),
        ('{"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}', "YWxhZGRpbjpvcGVuc2VzYW1l"),
        ('{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', "wJalrXUtnFEMI"),
        # user-info: a token as the user name, and a password that holds an @
        ("clone https://ghp_abcdefghijklmnopqrstuvwxyz0123456789@github.com/x.git",
         "ghp_abcdefghijklmnop"),
        ("GET https://alice:hunter@22@files.example/v.mp4", "22@files"),
    ],
)
def test_secrets_are_removed(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_plain_text_survives_and_is_capped() -> None:
    assert redact("Internal Error, Please try again later.") == (
        "Internal Error, Please try again later."
    )
    assert len(redact("x" * 10_000)) == 500


def test_what_a_reader_needs_survives() -> None:
    assert redact("redis://:pw@10.0.0.5:6379/0 refused") == (
        "redis://[redacted]@10.0.0.5:6379/0 refused")
    assert "Authorization: Basic [redacted]" in redact("Authorization: Basic YWxhZGRpbjpvcGVu")
    assert redact("https://alice:hunter@22@files.example/v.mp4 and mail a@b.example") == (
        "https://[redacted]@files.example/v.mp4 and mail a@b.example")

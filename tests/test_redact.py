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
    ],
)
def test_secrets_are_removed(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_plain_text_survives_and_is_capped() -> None:
    assert redact("Internal Error, Please try again later.") == (
        "Internal Error, Please try again later."
    )
    assert len(redact("x" * 10_000)) == 500

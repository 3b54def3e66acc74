import pytest

from llmflow.redact import redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://user:PASS@host:8080/v1", "http://host:8080/v1"),
        ("http://user@host/v1", "http://host/v1"),
        ("https://host/v1?api_key=PASS&x=1", "https://host/v1?api_key=***&x=1"),
        ("https://host/v1?Token=PASS", "https://host/v1?Token=***"),
        ("http://u:PASS@[::1]:11434", "http://[::1]:11434"),
        ("http://localhost:11434", "http://localhost:11434"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("postgresql://mlflow:PASS@127.0.0.1:5432/mlflow", "postgresql://127.0.0.1:5432/mlflow"),
    ],
)
def test_redact_url_drops_credentials(url, expected):
    assert redact_url(url) == expected


def test_redact_url_never_raises_on_a_broken_url():
    assert "PASS" not in redact_url("http://user:PASS@[::1")


def test_redact_text_masks_every_url_in_a_message():
    message = (
        "cannot connect to http://user:PASS@10.0.0.1:11434 (and https://h/x?key=PASS&a=b): refused"
    )
    redacted = redact_text(message)
    assert "PASS" not in redacted
    assert "http://10.0.0.1:11434" in redacted
    assert "https://h/x?key=***&a=b" in redacted


def test_redact_text_leaves_plain_text_alone():
    text = "base_url: http://127.0.0.1:8080/v1  # a@b.c key=value"
    assert redact_text(text) == text


def test_a_password_holding_an_at_sign_is_removed_whole():
    assert redact_text("see http://me:p@ss-word@host/x") == "see http://host/x"
    assert redact_url("http://me:p@ss-word@host:8080/v1") == "http://host:8080/v1"

"""Standard Webhooks signing: the official vector, round trips, rotation, tampering, tolerance."""

from __future__ import annotations

import base64
import time

import pytest

from zapgate.webhooks import signing
from zapgate.webhooks.signing import SignatureError, headers, new_secret, secret_bytes, sign, verify

# The sign() vector of the reference Python library's test suite (standard-webhooks repo).
KAT_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KAT_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KAT_TIMESTAMP = 1614265330
KAT_BODY = b'{"test": 2432232314}'
KAT_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
TS = 1_700_000_000
BODY = b'{"type":"message.received","data":{"text":"ol\xc3\xa1"}}'


def test_known_answer_from_the_reference_library() -> None:
    assert sign(KAT_SECRET, KAT_ID, KAT_TIMESTAMP, KAT_BODY) == KAT_SIGNATURE


def test_known_answer_verifies() -> None:
    received = {
        "webhook-id": KAT_ID,
        "webhook-timestamp": str(KAT_TIMESTAMP),
        "webhook-signature": KAT_SIGNATURE,
    }
    verify(KAT_SECRET, received, KAT_BODY, now=KAT_TIMESTAMP)


def test_new_secret_is_prefixed_base64_of_enough_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(secret_bytes(secret)) >= 24
    assert secret != new_secret()


def test_secret_bytes_accepts_with_or_without_prefix_and_padding() -> None:
    raw = bytes(range(24, 49))  # 25 bytes: base64 needs padding
    encoded = base64.b64encode(raw).decode()
    assert encoded.endswith("=")
    for spelling in (encoded, "whsec_" + encoded, "whsec_" + encoded.rstrip("=")):
        assert secret_bytes(spelling) == raw


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_not base64!", "not valid base64"),
        ("whsec_", "decodes to 0 bytes"),
        ("whsec_" + base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
        ("whsec_" + base64.b64encode(b"x" * 65).decode(), "decodes to 65 bytes"),
    ],
)
def test_bad_secrets_are_refused_clearly(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        secret_bytes(secret)


def test_round_trip() -> None:
    secret = new_secret()
    verify(secret, headers([secret], MSG_ID, TS, BODY), BODY, now=TS)


def test_headers_carry_id_timestamp_and_signature() -> None:
    secret = new_secret()
    sent = headers([secret], MSG_ID, TS, BODY)
    assert sent == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TS),
        "webhook-signature": sign(secret, MSG_ID, TS, BODY),
    }


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    sent = headers([old, new], MSG_ID, TS, BODY)
    assert sent["webhook-signature"].split(" ") == [
        sign(old, MSG_ID, TS, BODY),
        sign(new, MSG_ID, TS, BODY),
    ]
    verify(old, sent, BODY, now=TS)
    verify(new, sent, BODY, now=TS)
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(new_secret(), sent, BODY, now=TS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", BODY + b" "),
        ("webhook-id", "msg_other"),
        ("webhook-timestamp", str(TS + 1)),
        ("webhook-signature", "v1," + base64.b64encode(b"\0" * 32).decode()),
    ],
)
def test_tampering_fails(field: str, value: str | bytes) -> None:
    secret = new_secret()
    received = headers([secret], MSG_ID, TS, BODY)
    body = BODY
    if isinstance(value, bytes):
        body = value
    else:
        received[field] = value
    with pytest.raises(SignatureError, match="no matching signature"):
        verify(secret, received, body, now=TS)


def test_signature_under_another_secret_fails() -> None:
    received = headers([new_secret()], MSG_ID, TS, BODY)
    with pytest.raises(SignatureError):
        verify(new_secret(), received, BODY, now=TS)


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_within_tolerance_passes(offset: int) -> None:
    secret = new_secret()
    verify(secret, headers([secret], MSG_ID, TS, BODY), BODY, now=TS + offset)


@pytest.mark.parametrize("offset", [-301, 301, 86_400])
def test_outside_tolerance_fails(offset: int) -> None:
    secret = new_secret()
    with pytest.raises(SignatureError, match="outside the 300s tolerance"):
        verify(secret, headers([secret], MSG_ID, TS, BODY), BODY, now=TS + offset)


def test_custom_tolerance() -> None:
    secret = new_secret()
    sent = headers([secret], MSG_ID, TS, BODY)
    verify(secret, sent, BODY, tolerance_seconds=3600, now=TS + 3600)
    with pytest.raises(SignatureError, match="outside the 10s tolerance"):
        verify(secret, sent, BODY, tolerance_seconds=10, now=TS + 11)


def test_default_now_is_the_clock() -> None:
    secret = new_secret()
    verify(secret, headers([secret], MSG_ID, int(time.time()), BODY), BODY)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(secret, headers([secret], MSG_ID, TS, BODY), BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_fails(missing: str) -> None:
    secret = new_secret()
    received = headers([secret], MSG_ID, TS, BODY)
    del received[missing]
    with pytest.raises(SignatureError, match=f"missing {missing}"):
        verify(secret, received, BODY, now=TS)


@pytest.mark.parametrize("timestamp", ["soon", "1.7e9", "-1700000000", " 1700000000", "١٧٠٠"])
def test_non_integer_timestamp_fails(timestamp: str) -> None:
    secret = new_secret()
    received = headers([secret], MSG_ID, TS, BODY)
    received["webhook-timestamp"] = timestamp
    with pytest.raises(SignatureError, match="not an integer"):
        verify(secret, received, BODY, now=TS)


def test_header_names_are_case_insensitive() -> None:
    secret = new_secret()
    received = {k.title(): v for k, v in headers([secret], MSG_ID, TS, BODY).items()}
    assert "Webhook-Signature" in received
    verify(secret, received, BODY, now=TS)


def test_unknown_versions_and_garbage_are_skipped() -> None:
    secret = new_secret()
    good = sign(secret, MSG_ID, TS, BODY)
    same_bytes = good.removeprefix("v1,")
    received = headers([secret], MSG_ID, TS, BODY)
    received["webhook-signature"] = f"v1a,{same_bytes} v2,{same_bytes} v1,%%% junk {good}"
    verify(secret, received, BODY, now=TS)
    received["webhook-signature"] = f"v1a,{same_bytes} v2,{same_bytes} v1,%%% junk"
    with pytest.raises(SignatureError):
        verify(secret, received, BODY, now=TS)


def test_headers_needs_a_sequence_of_secrets() -> None:
    with pytest.raises(TypeError, match="sequence"):
        headers(new_secret(), MSG_ID, TS, BODY)
    with pytest.raises(ValueError, match="at least one secret"):
        headers([], MSG_ID, TS, BODY)


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1"])
def test_sign_refuses_ids_that_make_the_signed_content_ambiguous(msg_id: str) -> None:
    with pytest.raises(ValueError, match="msg_id"):
        sign(new_secret(), msg_id, TS, BODY)


def test_signature_error_is_a_value_error() -> None:
    assert issubclass(signing.SignatureError, ValueError)


class TestInteropWithTheReferenceLibrary:
    """The PyPI ``standardwebhooks`` package must accept what zapgate sends, and vice versa."""

    @pytest.fixture
    def webhook_cls(self) -> type:
        module = pytest.importorskip(
            "standardwebhooks",
            reason="standardwebhooks (dev dependency) is not installed; pip install -e .[dev]",
        )
        cls: type = module.Webhook
        return cls

    def test_reference_verifies_our_headers(self, webhook_cls: type) -> None:
        secret = new_secret()
        sent = headers([secret], MSG_ID, int(time.time()), BODY)
        assert webhook_cls(secret).verify(BODY, sent) == {
            "type": "message.received",
            "data": {"text": "olá"},
        }

    def test_reference_verifies_during_rotation(self, webhook_cls: type) -> None:
        old, new = new_secret(), new_secret()
        sent = headers([old, new], MSG_ID, int(time.time()), BODY)
        webhook_cls(old).verify(BODY, sent)
        webhook_cls(new).verify(BODY, sent)

    def test_reference_rejects_a_tampered_body(self, webhook_cls: type) -> None:
        from standardwebhooks.webhooks import WebhookVerificationError

        secret = new_secret()
        sent = headers([secret], MSG_ID, int(time.time()), BODY)
        with pytest.raises(WebhookVerificationError):
            webhook_cls(secret).verify(BODY.replace(b"ol", b"oi"), sent)

    def test_we_verify_the_reference_signature(self, webhook_cls: type) -> None:
        from datetime import UTC, datetime

        secret = new_secret()
        now = int(time.time())
        signature = webhook_cls(secret).sign(
            msg_id=MSG_ID, timestamp=datetime.fromtimestamp(now, tz=UTC), data=BODY.decode()
        )
        assert signature == sign(secret, MSG_ID, now, BODY)
        received = {
            "webhook-id": MSG_ID,
            "webhook-timestamp": str(now),
            "webhook-signature": signature,
        }
        verify(secret, received, BODY)

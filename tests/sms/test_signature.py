"""X-Twilio-Signature: known answers computed apart from zapgate (``openssl dgst -sha1 -hmac``
over the signed text written out by hand), and what must not pass."""

from __future__ import annotations

import pytest

from zapgate.engines.sms.signature import BadSignature, signature_of, signed_text, verify

URL = "https://zapgate.example.com/api/v1/sms/default/sms-br/webhook"
TOKEN = "kat-auth-token"
INBOUND = [  # in the order a form may carry them: the signature sorts them by name
    ("To", "+15005550006"),
    ("MessageSid", "SM00000000000000000000000000000001"),
    ("From", "+5511988887777"),
    ("Body", "Olá, mundo €"),
    ("NumMedia", "0"),
    ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
]
EXPECTED = "QC7Khuc6KhAqZyM31/jw6uqlgBo="
"""printf '%s' "$URL"'AccountSidAC0123…cdefBodyOlá, mundo €From+5511988887777MessageSidSM0…01'\
'NumMedia0To+15005550006' | openssl dgst -sha1 -hmac kat-auth-token -binary | base64"""


def test_the_signed_text_is_the_url_then_names_and_values_sorted_by_name() -> None:
    assert signed_text(URL, INBOUND) == (
        URL
        + "AccountSidAC0123456789abcdef0123456789abcdef"
        + "BodyOlá, mundo €"
        + "From+5511988887777"
        + "MessageSidSM00000000000000000000000000000001"
        + "NumMedia0"
        + "To+15005550006"
    )


def test_the_signature_matches_known_answers() -> None:
    assert signature_of(URL, INBOUND, TOKEN) == EXPECTED
    # Twilio's own documented example (a voice request; its query is part of the URL)
    twilio_example = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signature_of(url, twilio_example, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    verify(URL, INBOUND, EXPECTED, TOKEN)
    verify(URL, INBOUND, f" {EXPECTED} ", TOKEN)


@pytest.mark.parametrize(
    ("url", "params", "header", "token"),
    [
        (URL, INBOUND, None, TOKEN),
        (URL, INBOUND, "", TOKEN),
        (URL, INBOUND, EXPECTED.lower(), TOKEN),  # base64 is case-sensitive
        (URL, INBOUND, EXPECTED, "another-token"),
        (URL + "/", INBOUND, EXPECTED, TOKEN),  # another URL
        (URL.replace("https", "http"), INBOUND, EXPECTED, TOKEN),
        (URL, [*INBOUND, ("Extra", "")], EXPECTED, TOKEN),  # a parameter added, even empty
        (URL, INBOUND[1:], EXPECTED, TOKEN),  # one left out
        (URL, [(n, v + " ") if n == "Body" else (n, v) for n, v in INBOUND], EXPECTED, TOKEN),
        (URL, INBOUND, "é" + EXPECTED, TOKEN),
    ],
)
def test_anything_else_is_refused(
    url: str, params: list[tuple[str, str]], header: str | None, token: str
) -> None:
    with pytest.raises(BadSignature):
        verify(url, params, header, token)


def test_a_repeated_name_signs_each_distinct_value_in_order() -> None:
    params = [("MediaUrl", "https://b.example/2"), ("A", "1"), ("MediaUrl", "https://a.example/1")]
    assert signed_text("u", params) == "uA1MediaUrlhttps://a.example/1MediaUrlhttps://b.example/2"
    assert signed_text("u", [*params, ("A", "1")]) == signed_text("u", params)

"""Strict token-request parsing (RFC 6749 §2.3.1, §3.1, §3.2, App. B; catalog A01-A08, A15)."""

from __future__ import annotations

import base64
import random
from urllib.parse import parse_qsl, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyless.oauth.errors import InvalidRequest, MethodNotAllowed, OAuthErrorResponse
from keyless.oauth.request import (
    _DECODED,
    DEFAULT_MAX_VALUE,
    MAX_BODY,
    MAX_PARAMS,
    MAX_QUERY,
    MAX_VALUE,
    OAUTH_PARAMETERS,
    BasicCredentials,
    _form_pairs,
    parse_basic,
    parse_form,
    parse_token_request,
)
from tests.unit.oauth.fakes import http_request

GOOD = {"grant_type": "client_credentials", "client_id": "abc", "client_secret": "s3cret", "scope": "api://x/.default"}


def basic(user: str, password: str, *, encode: bool = True) -> str:
    raw = f"{quote_plus(user)}:{quote_plus(password)}" if encode else f"{user}:{password}"
    return "Basic " + base64.b64encode(raw.encode("utf-8")).decode("ascii")


def refused(exc: pytest.ExceptionInfo[OAuthErrorResponse], detail: str, description: str) -> None:
    err = exc.value
    assert (err.status, err.error, err.detail, err.description) == (400, "invalid_request", detail, description)
    assert err.body() == {"error": "invalid_request", "error_description": description}


# -- method, query, content type ---------------------------------------------------------------------

def test_well_formed_request_parses() -> None:
    req = parse_token_request(http_request(GOOD, source="192.0.2.7"))
    assert req.params == GOOD
    assert req.basic is None
    assert req.source == "192.0.2.7"
    assert req.get("scope") == "api://x/.default"
    assert req.get("resource") is None
    assert "s3cret" not in repr(req)  # parameters (and so secrets) are kept out of repr


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "post"])
def test_only_post_accepted(method: str) -> None:
    with pytest.raises(MethodNotAllowed) as exc:
        parse_token_request(http_request(GOOD, method=method))
    err = exc.value
    assert (err.status, err.error, err.detail) == (405, "invalid_request", "method_not_post")
    assert err.body() == {"error": "invalid_request", "error_description": "the token endpoint accepts POST only"}


def test_get_with_credentials_in_query_is_405_before_anything_else() -> None:
    query = b"grant_type=client_credentials&client_secret=x"
    req = http_request(method="GET", body=b"", content_type=None, query=query)
    with pytest.raises(MethodNotAllowed):
        parse_token_request(req)


@pytest.mark.parametrize("name", sorted(OAUTH_PARAMETERS))
def test_every_oauth_parameter_in_the_query_is_refused(name: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, query=f"{name}=x".encode()))
    refused(exc, "query_parameters", "parameters must be sent in the request body")


def test_the_names_the_endpoint_reads_are_all_forbidden_in_the_query() -> None:
    read = {"grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "scope",
            "resource", "claims"}
    assert read <= OAUTH_PARAMETERS
    assert read | set(MAX_VALUE) <= OAUTH_PARAMETERS


@pytest.mark.parametrize(
    "query",
    [
        b"client_secret=s3cret",
        b"client-request-id=1&client_secret=s3cret",  # behind an allowed one
        b"client_secret",  # a bare name
        b"client_secret=",  # an empty value
        b"CLIENT_SECRET=x", b"Client_Secret=x", b"GRANT_TYPE=client_credentials", b"Scope=x",
        b"client%5Fsecret=x", b"client%5fsecret=x", b"%63%6C%69%65%6E%74%5F%73%65%63%72%65%74=x",
        b"client%255Fsecret=x",  # encoded twice: a proxy may decode once more than we do
        b"client%25255Fsecret=x",  # three times
        b"client_secret%00=x", b"client_secret%00junk=x",  # C strings end at NUL
        b"client_secret[]=x", b"client_secret%5B%5D=x", b"client_secret[0]=x",  # PHP-style arrays
        b"+client_secret=x", b"client_secret+=x", b"%20client_secret%20=x", b"%09client_secret=x",
        b"client+secret=x", b"client%20secret=x", b"client.secret=x",  # PHP turns space and . into _
        b"client_%C5%BFecret=x",  # U+017F LATIN SMALL LETTER LONG S case-folds to s
        b"%EF%BD%83lient_secret=x",  # fullwidth c: NFKC
        b"x=1;client_secret=x",  # `;` as a separator
        b"?client_secret=x", b"%3Fclient_secret=x", b"x=1&? client_secret=x",  # URLSearchParams drops a leading ?
        b"client_secret=a&client_secret=b",  # repeated
        b"client-request-id=a&client-request-id=b&client_id=abc",
        b"resource=api%3A%2F%2Fx", b"client_assertion_type=urn", b"password=p", b"refresh_token=r",
    ],
)
def test_oauth_parameter_in_query_refused_however_spelled(query: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, query=query))
    refused(exc, "query_parameters", "parameters must be sent in the request body")


@pytest.mark.parametrize(
    "query",
    [
        b"client-request-id=2b3c6c5c-61a5-4a31-9a44-0b7a4b3a6a0e",  # MSAL Node
        b"client-request-id=2b3c&x-client-SKU=msal.js.node&x-client-VER=3.8.1&x-client-OS=linux&x-client-CPU=x64",
        b"x=1", b"a", b"=", b"&", b"a&&b", b"x-ms-lib-capability=retry-after, h429",
        b"client-request-id=a&client-request-id=b",  # repeated, but not ours to judge
        b"client_secretx=1", b"my_client_secret=1", b"client=secret", b"scopes=1", b"client_ids=1",
        b"note=client_secret%3Dx",  # a value is never read as a name
        b"x=%ff%zz", b"x=%",  # nor decoded
        b"client%2Drequest%2Did=1",
    ],
)
def test_query_without_oauth_parameters_is_ignored(query: bytes) -> None:
    assert parse_token_request(http_request(GOOD, query=query)).params == GOOD


@pytest.mark.parametrize("query", [b"client%zz=1", b"client%=1", b"x%ff=1", b"%C3=1", b"client\xc3\xa9=1",
                                   b"client%2525252525Fsecret=x", b"client%25zz=1"])
def test_query_with_an_undecodable_name_is_refused(query: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, query=query))
    refused(exc, "query_malformed", "malformed query string")


def test_query_over_the_cap_is_refused() -> None:
    query = b"x=" + b"a" * (MAX_QUERY - 2)
    assert parse_token_request(http_request(GOOD, query=query)).params == GOOD
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, query=query + b"a"))
    refused(exc, "query_too_long", "query string too long")


def test_query_refusal_never_echoes_the_value() -> None:
    secret = "kls_canary_in_the_url"
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, query=f"client-request-id=1&client_secret={secret}".encode()))
    assert secret not in str(exc.value.body()) + exc.value.detail + str(exc.value)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=UTF-8",
        "application/x-www-form-urlencoded;charset=utf-8",
        "Application/X-WWW-Form-Urlencoded",
        "  application/x-www-form-urlencoded ; charset=\"utf-8\"",
    ],
)
def test_form_content_types_accepted(content_type: str) -> None:
    assert parse_token_request(http_request(GOOD, content_type=content_type)).params == GOOD


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "multipart/form-data; boundary=xyz",
        "text/plain",
        "application/x-www-form-urlencodedx",
        "application/x-www-form-urlencoded-json",
        "application/*",
        "x-www-form-urlencoded",
    ],
)
def test_other_content_types_refused(content_type: str | None) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, content_type=content_type))
    refused(exc, "content_type", "content type must be application/x-www-form-urlencoded")


def test_json_body_with_form_content_type_is_malformed() -> None:
    body = b'{"grant_type":"client_credentials","client_id":"abc"}'
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(body=body))
    refused(exc, "form_malformed", "malformed form body")


def test_multipart_body_is_never_read_as_multipart() -> None:
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n"
            b"--xyz--\r\n")
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(body=body, content_type="multipart/form-data; boundary=xyz"))
    refused(exc, "content_type", "content type must be application/x-www-form-urlencoded")
    # Mislabelled as a form, it is one opaque field: no grant_type is ever recovered from it.
    assert "grant_type" not in parse_token_request(http_request(body=body)).params


# -- duplicates and empty values ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["grant_type", "client_id", "client_secret", "scope", "resource",
                                  "client_assertion", "client_assertion_type", "unknown_extension"])
def test_duplicate_parameter_refused(name: str) -> None:
    pairs = [*GOOD.items(), (name, "again")] if name in GOOD else [*GOOD.items(), (name, "x"), (name, "y")]
    with pytest.raises(InvalidRequest) as exc:
        parse_form(http_request(pairs).body)
    refused(exc, f"duplicate_parameter:{name}", "parameter repeated")


@pytest.mark.parametrize("body", [b"client_secret=&client_secret=", b"client_secret=&client_secret=x",
                                  b"client_secret=x&client_secret=", b"scope=a&scope=a"])
def test_duplicate_empty_or_identical_values_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_form(body)
    refused(exc, "duplicate_parameter:" + body.split(b"=", 1)[0].decode(), "parameter repeated")


def test_duplicate_detected_after_percent_decoding_the_name() -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_form(b"grant_type=client_credentials&grant%5Ftype=password")
    refused(exc, "duplicate_parameter:grant_type", "parameter repeated")


def test_duplicate_detail_truncates_a_long_name() -> None:
    name = "n" * 100
    with pytest.raises(InvalidRequest) as exc:
        parse_form(f"{name}=1&{name}=2".encode())
    assert exc.value.detail == "duplicate_parameter:" + "n" * 32


def test_empty_value_is_treated_as_omitted() -> None:
    params = parse_form(b"grant_type=client_credentials&client_secret=&client_id=abc&scope=")
    assert params == {"grant_type": "client_credentials", "client_id": "abc"}
    assert "client_secret" not in params


# -- sizes ---------------------------------------------------------------------------------------------

def test_body_cap() -> None:
    body = b"scope=" + b"a" * (MAX_BODY - len(b"scope="))
    assert len(body) == MAX_BODY
    with pytest.raises(InvalidRequest) as exc:
        parse_form(body)
    assert exc.value.detail == "parameter_too_long:scope"  # at the cap: parsed, then the value cap applies
    with pytest.raises(InvalidRequest) as exc:
        parse_form(body + b"a")
    refused(exc, "body_too_large", "request body too large")


@pytest.mark.parametrize(("name", "cap"), [*MAX_VALUE.items(), ("client_secret", DEFAULT_MAX_VALUE),
                                           ("client_id", DEFAULT_MAX_VALUE), ("grant_type", DEFAULT_MAX_VALUE)])
def test_value_caps(name: str, cap: int) -> None:
    assert parse_form(f"{name}={'a' * cap}".encode()) == {name: "a" * cap}
    with pytest.raises(InvalidRequest) as exc:
        parse_form(f"{name}={'a' * (cap + 1)}".encode())
    refused(exc, f"parameter_too_long:{name}", "parameter too long")


def test_value_cap_counts_decoded_characters() -> None:
    cap = MAX_VALUE["scope"]
    assert parse_form(("scope=" + "%41" * cap).encode()) == {"scope": "A" * cap}


def test_parameter_count_capped() -> None:
    ok = "&".join(f"p{i}=v" for i in range(MAX_PARAMS)).encode()
    assert len(parse_form(ok)) == MAX_PARAMS
    with pytest.raises(InvalidRequest) as exc:
        parse_form(ok + b"&extra=v")
    refused(exc, "form_malformed", "malformed form body")


# -- encoding ------------------------------------------------------------------------------------------

def test_percent_and_plus_decoding() -> None:
    params = parse_form(b"scope=api%3A%2F%2Fx%2F.default&client_id=a+b&x=%C3%A9")
    assert params == {"scope": "api://x/.default", "client_id": "a b", "x": "\u00e9"}


@pytest.mark.parametrize("body", [b"client_id=%ff", b"client_id=%C3", b"client_id=%ed%a0%80", b"client_id=\xc3\xa9",
                                  b"client_id=\xff", b"\x00"])
def test_invalid_utf8_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_form(body)
    refused(exc, "form_malformed", "malformed form body")


@pytest.mark.parametrize("body", [b"grant_type", b"a=1&&b=2", b"a=1&", b"&a=1", b"&"])
def test_malformed_field_structure_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_form(body)
    refused(exc, "form_malformed", "malformed form body")


def test_empty_body_is_no_parameters() -> None:
    assert parse_form(b"") == {}


@pytest.mark.parametrize("body", [b"client_id=abc%zz", b"client_id=abc%4", b"client_id=%"])
def test_invalid_percent_encoding_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_form(body)
    refused(exc, "form_malformed", "malformed form body")


# -- HTTP Basic (RFC 6749 §2.3.1 and Appendix B) -------------------------------------------------------

def test_basic_parsed_into_request() -> None:
    req = parse_token_request(http_request({"grant_type": "client_credentials"}, authorization=basic("abc", "s3")))
    assert req.basic == BasicCredentials(client_id="abc", secret="s3")
    assert "s3" not in repr(req.basic)


def test_basic_scheme_is_case_insensitive_and_tolerates_spaces() -> None:
    token = base64.b64encode(b"abc:s3").decode()
    assert parse_basic(f"basic {token}") == BasicCredentials("abc", "s3")
    assert parse_basic(f"  BASIC   {token}  ") == BasicCredentials("abc", "s3")


@pytest.mark.parametrize(
    ("user", "password"),
    [("abc", "p:w"), ("a:b", "x"), ("a b", "c+d"), ("caf\u00e9", "\u00fc\u00f1\u00ee"), ("id%", "%25"),
     ("a&b=c", "?/#")],
)
def test_basic_urlencoded_parts_decoded_per_appendix_b(user: str, password: str) -> None:
    assert parse_basic(basic(user, password)) == BasicCredentials(client_id=user, secret=password)


def test_basic_plus_means_space() -> None:
    raw = base64.b64encode(b"a+b:c+d").decode()
    assert parse_basic(f"Basic {raw}") == BasicCredentials("a b", "c d")


def test_basic_splits_at_first_colon() -> None:
    raw = base64.b64encode(b"abc:s:e:c").decode()
    assert parse_basic(f"Basic {raw}") == BasicCredentials("abc", "s:e:c")


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
def test_basic_round_trip(user: str, password: str) -> None:
    try:
        user.encode("utf-8")
        password.encode("utf-8")
    except UnicodeEncodeError:
        return  # lone surrogates cannot be sent at all
    assert parse_basic(basic(user, password)) == BasicCredentials(user, password)


@pytest.mark.parametrize(
    ("header", "detail", "description"),
    [
        ("Basic", "basic_empty", "malformed Basic authorization header"),
        ("Basic ", "basic_empty", "malformed Basic authorization header"),
        ("Basic    ", "basic_empty", "malformed Basic authorization header"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "basic_no_colon", "malformed Basic authorization header"),
        ("Basic " + base64.b64encode(b"").decode() + "==", "basic_not_base64", "malformed Basic authorization header"),
        ("Basic not*base64!", "basic_not_base64", "malformed Basic authorization header"),
        ("Basic YWJj OnMz", "basic_not_base64", "malformed Basic authorization header"),
        ("Basic \u00e9\u00e9\u00e9\u00e9", "basic_not_base64", "malformed Basic authorization header"),
        ("Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "basic_not_base64",
         "malformed Basic authorization header"),
        ("Basic " + base64.b64encode(b":secret").decode(), "basic_empty_part", "malformed Basic authorization header"),
        ("Basic " + base64.b64encode(b"abc:").decode(), "basic_empty_part", "malformed Basic authorization header"),
        ("Basic " + base64.b64encode(b":").decode(), "basic_empty_part", "malformed Basic authorization header"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", "auth_scheme",
         "unsupported authorization scheme at the token endpoint"),
        ("Digest username=abc", "auth_scheme", "unsupported authorization scheme at the token endpoint"),
        ("DPoP abc", "auth_scheme", "unsupported authorization scheme at the token endpoint"),
        ("YWJjOnMz", "auth_scheme", "unsupported authorization scheme at the token endpoint"),
        ("", "auth_scheme", "unsupported authorization scheme at the token endpoint"),
        ("Basic\tYWJjOnMz", "auth_scheme", "unsupported authorization scheme at the token endpoint"),
    ],
)
def test_malformed_authorization_refused(header: str, detail: str, description: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_token_request(http_request(GOOD, authorization=header))
    refused(exc, detail, description)


def test_basic_invalid_percent_utf8_refused() -> None:
    raw = base64.b64encode(b"abc%ff:secret").decode()
    with pytest.raises(InvalidRequest):
        parse_basic(f"Basic {raw}")


def test_basic_failure_messages_never_echo_input() -> None:
    secret = "kls_canary_should_not_be_echoed"
    for header in (f"Bearer {secret}", "Basic " + base64.b64encode(secret.encode()).decode(), f"Basic {secret}!"):
        with pytest.raises(InvalidRequest) as exc:
            parse_basic(header)
        assert secret not in str(exc.value.body())
        assert secret not in exc.value.detail


_FORMS = [
    "", "a=1", "a=", "=1", "=", "a", "a=1&", "&a=1", "a=1&&b=2", "a=1&b", "a=b=c", "a=%41", "a=%4", "a=%zz",
    "a=+b+", "a+b=c", "%61=1", "a=%C3%A9", "a=%C3", "a=%FF", "scope=api%3A%2F%2Fbench%2F.default&grant_type=x",
    "a=1;b=2", "a=1&" * 31 + "z=9", "a=1&" * 32 + "z=9", "client_secret=%2B%2F%3D&client_id=x", "a=%%41", "a=%2",
]


def _reference(text: str) -> list[tuple[str, str]] | str:
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8", errors="strict",
                         max_num_fields=MAX_PARAMS)
    except (UnicodeError, ValueError) as exc:
        return type(exc).__name__


def _ours(text: str) -> list[tuple[str, str]] | str:
    try:
        return _form_pairs(text)
    except (UnicodeError, ValueError) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("text", _FORMS)
def test_form_pairs_are_parse_qsl_exactly(text: str) -> None:
    """The token form's fast split gives the very pairs (or the very refusal) `parse_qsl` in strict mode
    gives, so duplicates, blanks and bad escapes are refused exactly as before (catalog A03)."""
    assert _ours(text) == _reference(text)
    assert _ours(text) == _reference(text)  # the remembered decoding too


def test_form_pairs_match_parse_qsl_on_random_forms() -> None:
    rng = random.Random(18)
    alphabet = "ab=&%+2F41C3A9zé;=" + "scope"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert _ours(text) == _reference(text), text


def test_secrets_are_never_remembered_by_the_form_decoder() -> None:
    _form_pairs("client_secret=s%2Bcret&client_assertion=a%2Eb&scope=api%3A%2F%2Fx")
    assert "s%2Bcret" not in _DECODED and "a%2Eb" not in _DECODED

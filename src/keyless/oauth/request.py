"""Parsing a token request strictly (RFC 6749 §3.2, §2.3; catalog A01-A08, A15).

The server hands over the raw pieces; this module decides whether they form one well-formed request:
POST only, form encoding only, no OAuth parameter in the query (A01), no duplicate parameters (never
first- or last-wins: a proxy and we could disagree, A03), empty values treated as omitted (R-6749-4),
sizes capped before anything else is looked at.
"""

from __future__ import annotations

import binascii
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote, unquote_plus

from keyless.oauth.errors import InvalidRequest, MethodNotAllowed

MAX_BODY = 32 * 1024
MAX_PARAMS = 32
MAX_VALUE = {"client_assertion": 16 * 1024, "scope": 2048, "resource": 2048, "claims": 4096}
DEFAULT_MAX_VALUE = 1024
FORM = "application/x-www-form-urlencoded"
MAX_QUERY = 4096
# RFC 6749 §2.3.1 and §3.2 keep credentials and token-request parameters out of URLs (a URL ends up in
# proxy, browser and server logs). These are every parameter this endpoint reads, plus the credentials
# and grant parameters of the other OAuth grants (RFC 6749 §4-§6, RFC 7521, RFC 8693, RFC 8628): none
# of them is ever meaningful in a token request's URL. Anything else in the query (MSAL's
# `client-request-id`, `x-client-SKU`, ... correlation and telemetry, docs/protocol.md) is ignored.
OAUTH_PARAMETERS = frozenset({
    "grant_type", "client_id", "client_secret", "client_assertion", "client_assertion_type", "scope",
    "resource", "claims",
    "assertion", "code", "code_verifier", "redirect_uri", "refresh_token", "username", "password",
    "device_code", "subject_token", "subject_token_type", "actor_token", "actor_token_type",
    "requested_token_type", "audience", "access_token", "id_token",
})
_QUERY_SEPARATOR = re.compile(r"[&;]")
_NAME_DECODE_ROUNDS = 4


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class TokenHttpRequest:
    """What the HTTP layer passes in. `url` and `client_cert` are there for DPoP and mTLS later.

    The shell does not answer a request itself: what it saw and refused to read (a body past
    `MAX_BODY`, a repeated Authorization or Content-Type) it reports here, so the token service
    refuses it like any other request, sign-in record included (`transport_refusal`)."""

    method: str
    content_type: str | None
    authorization: str | None
    query: bytes
    body: bytes
    source: str | None
    url: str = ""
    client_cert: bytes | None = None
    body_too_large: bool = False
    repeated_header: bool = False


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class BasicCredentials:
    client_id: str
    secret: str = field(repr=False)


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class TokenRequest:
    params: dict[str, str] = field(repr=False)
    basic: BasicCredentials | None
    source: str | None

    def get(self, name: str) -> str | None:
        return self.params.get(name)


def _content_type_ok(value: str | None) -> bool:
    if value is None:
        return False
    media = value.split(";", 1)[0].strip().lower()
    return media == FORM


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _unquote_strict(value: str) -> str:
    """Form-urldecode, refusing malformed escapes and invalid UTF-8 instead of guessing."""
    if _BAD_ESCAPE.search(value):
        raise ValueError("malformed percent-escape")
    return unquote_plus(value, encoding="utf-8", errors="strict")


def _query_name(piece: str) -> str:
    """A query parameter's name as the most lenient parser could read it, so that no spelling slips past.

    Decoded until stable (a proxy may decode once more than we do), then cut where C strings and
    PHP-style `name[]` arrays end, trimmed (a leading `?` too, as URLSearchParams drops it), with
    PHP's `.`/space-to-`_` mangling, NFKC and case folding (`CLIENT_SECRET`, U+017F for an `s`).
    Raises ValueError when a name is not valid percent-encoded UTF-8: such a query cannot be shown
    to carry no credential.
    """
    name = piece.split("=", 1)[0]
    for _ in range(_NAME_DECODE_ROUNDS):
        if "%" not in name and "+" not in name:
            break
        name = _unquote_strict(name)
    else:
        if "%" in name:
            raise ValueError("a name encoded more times than anyone decodes")
    name = name.split("\x00", 1)[0].split("[", 1)[0].strip().lstrip("?").strip()
    name = unicodedata.normalize("NFKC", name).casefold()
    return name.replace(" ", "_").replace(".", "_")


def check_query(query: bytes) -> None:
    """Refuse a token request whose URL carries an OAuth parameter; ignore every other parameter.

    Only parameter names are looked at: values are never decoded, kept or logged (catalog A01).
    `;` counts as a separator too, as some servers and proxies read it so.
    """
    if not query:
        return
    if len(query) > MAX_QUERY:
        raise InvalidRequest("query string too long", detail="query_too_long")
    try:
        names = {_query_name(piece) for piece in _QUERY_SEPARATOR.split(query.decode("ascii")) if piece}
    except (UnicodeError, ValueError):
        raise InvalidRequest("malformed query string", detail="query_malformed") from None
    if names & OAUTH_PARAMETERS:
        raise InvalidRequest("parameters must be sent in the request body", detail="query_parameters")


def parse_basic(header: str) -> BasicCredentials:
    """RFC 6749 §2.3.1 + Appendix B: base64 of form-urlencoded id and secret joined by a colon."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidRequest("unsupported authorization scheme at the token endpoint", detail="auth_scheme")
    value = value.strip()
    if not value:
        raise InvalidRequest("malformed Basic authorization header", detail="basic_empty")
    try:
        # `base64.b64decode(validate=True)` is exactly this call, behind two Python frames
        decoded = binascii.a2b_base64(value.encode("ascii"), strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidRequest("malformed Basic authorization header", detail="basic_not_base64") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise InvalidRequest("malformed Basic authorization header", detail="basic_no_colon")
    try:  # most ids and secrets need no decoding (Appendix B): taken as they are, the same result
        client_id = _unquote_strict(user) if "%" in user or "+" in user else user
        secret = _unquote_strict(password) if "%" in password or "+" in password else password
    except ValueError:
        raise InvalidRequest("malformed Basic authorization header", detail="basic_bad_encoding") from None
    if not client_id or not secret:
        raise InvalidRequest("malformed Basic authorization header", detail="basic_empty_part")
    return BasicCredentials(client_id=client_id, secret=secret)


def _form_pairs(text: str) -> list[tuple[str, str]]:
    """`parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_PARAMS)` with
    UTF-8 strict decoding, exactly (the same pairs, the same ValueError/UnicodeError on the same
    input; tests/unit/oauth/test_request.py compares the two), but a name or value without `%` or
    `+` is taken as it is instead of passing through `unquote` (issue 18: most of a token request's
    form is plain)."""
    if not text:
        return []
    if text.count("&") + 1 > MAX_PARAMS:
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for piece in text.split("&"):
        name, sep, value = piece.partition("=")
        if not sep:
            raise ValueError("bad query field")
        if "%" in name or "+" in name:
            name = unquote(name.replace("+", " "), encoding="utf-8", errors="strict")
        if "%" in value or "+" in value:
            value = _decode_value(name, value)
        pairs.append((name, value))
    return pairs


_MEMO_NAMES = frozenset({"grant_type", "scope", "resource", "client_id", "client_assertion_type"})  # never a secret
_DECODED: dict[str, str] = {}  # encoded -> decoded, for the values of `_MEMO_NAMES` only (at most 256)


def _decode_value(name: str, value: str) -> str:
    """A client sends the same encoded scope every time: its decoding (a pure function) is remembered,
    for parameters that never carry a secret; a value that fails to decode is never remembered."""
    if name not in _MEMO_NAMES:
        return unquote(value.replace("+", " "), encoding="utf-8", errors="strict")
    decoded = _DECODED.get(value)
    if decoded is None:
        decoded = unquote(value.replace("+", " "), encoding="utf-8", errors="strict")
        if len(_DECODED) >= 256:
            _DECODED.clear()
        _DECODED[value] = decoded
    return decoded


def parse_form(body: bytes) -> dict[str, str]:
    if len(body) > MAX_BODY:
        raise InvalidRequest("request body too large", detail="body_too_large")
    try:
        text = body.decode("ascii")
        if "%" in text and _BAD_ESCAPE.search(text):
            raise ValueError("malformed percent-escape")
        pairs = _form_pairs(text)
    except (UnicodeError, ValueError):
        raise InvalidRequest("malformed form body", detail="form_malformed") from None
    params: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise InvalidRequest("parameter repeated", detail=f"duplicate_parameter:{name[:32]}")
        seen.add(name)
        if len(value) > MAX_VALUE.get(name, DEFAULT_MAX_VALUE):
            raise InvalidRequest("parameter too long", detail=f"parameter_too_long:{name[:32]}")
        if value != "":
            params[name] = value
    return params


def transport_refusal(req: TokenHttpRequest) -> InvalidRequest | None:
    """What the HTTP shell could not read: a body over `MAX_BODY` (it stopped reading; catalog G03),
    or two copies of a header that decides how the request is read (a proxy and we could disagree)."""
    if req.body_too_large:
        return InvalidRequest("request body too large", detail="body_too_large")
    if req.repeated_header:
        return InvalidRequest("a request header is repeated", detail="duplicate_header")
    return None


def parse_token_request(req: TokenHttpRequest) -> TokenRequest:
    if req.method != "POST":
        raise MethodNotAllowed(detail="method_not_post")
    check_query(req.query)
    if not _content_type_ok(req.content_type):
        raise InvalidRequest("content type must be application/x-www-form-urlencoded", detail="content_type")
    params = parse_form(req.body)
    basic = parse_basic(req.authorization) if req.authorization is not None else None
    return TokenRequest(params=params, basic=basic, source=req.source)

"""`TokenValidator`: verify Keyless access tokens offline against the issuer's published JWKS.

Issuer, audience and algorithms are required arguments (catalog J03: no defaults to forget). Keys
come only from the configured issuer's JWKS, found through discovery over https (never from the
token's `jku`/`x5u`/`jwk`/`x5c` headers, J05/J06), each bound to its own `alg` and key type (J02).

Key cache: an unknown `kid` triggers at most one JWKS fetch per `refresh_interval`; a JWKS older
than `max_age` is refetched on the next validation (no background task), and if that fails the old
keys are not used any more (fail closed), so a key removed from the JWKS stops validating within
`max_age` (I04). One fetch at a time: a thread lock for `validate`, an asyncio lock for `avalidate`.

Per-token cost: the 8 KiB cap (J09) comes before any parsing; the hygiene checks of a header segment
(`keyless.jose.hygiene`: shape, duplicate members, `crit`) and the header rules below run once per
distinct header and are then cached; the signature is one public-key operation. A validated token
is remembered, keyed by the SHA-256 of the whole token, until `min(exp, memo_ttl)` with
`memo_ttl <= refresh_interval`, and a remembered token is only returned while its key is still in
the current JWKS, so key removal takes effect for remembered tokens exactly as for new ones.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from hashlib import sha256
from itertools import islice
from typing import Any, Literal, NamedTuple

import httpx

from keyless.jose.hygiene import MalformedJose, b64u_decode, check_compact, loads_strict
from keyless.jose.jws import ASYMMETRIC_ALGS, MAX_TOKEN_LENGTH, VerificationKey, verify_signature
from keyless.verify.claims import MAX_LEEWAY, AccessToken, InvalidToken, check_access_token
from keyless.verify.errors import InsufficientScope, KeysUnavailable, TokenTooLarge
from keyless.verify.jwks import KeySet, https_url, metadata_json, parse_jwks

MAX_CACHED_HEADERS = 64
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})


class _Parsed(NamedTuple):  # a tuple: built once per first-seen token, cheaper than a frozen dataclass
    kid: str
    alg: str
    header_segment: str
    signing_input: bytes
    signature: bytes
    payload: bytes  # decoded, not yet parsed: JSON is read only after the signature is verified


def authorize(
    token: AccessToken,
    *,
    roles: Iterable[str] = (),
    scopes: Iterable[str] = (),
    kind: Literal["app", "delegated"] | None = None,
) -> AccessToken:
    """Refuse (`InsufficientScope`) unless the token holds at least one of `roles` (when given), at
    least one of `scopes` (when given) and, when `kind` is set, is of that kind (J16: an app-only
    client-credentials token is not a token acting for a user or workload subject)."""
    roles, scopes = tuple(roles), tuple(scopes)
    if kind == "app" and not token.is_app_only:
        raise InsufficientScope(roles + scopes, "an application token is required")
    if kind == "delegated" and token.is_app_only:
        raise InsufficientScope(roles + scopes, "an application token where a delegated one is required")
    if roles and not token.roles.intersection(roles):
        raise InsufficientScope(roles, "missing role")
    if scopes and not token.scopes.intersection(scopes):
        raise InsufficientScope(scopes, "missing scope")
    return token


class TokenValidator:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        algorithms: Iterable[str],
        jwks_uri: str | None = None,
        ca: str | None = None,
        leeway: float = 30,
        refresh_interval: float = 60,
        max_age: float = 300,
        memo_ttl: float | None = None,
        memo_size: int = 10_000,
        realm: str | None = None,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
        async_http: httpx.AsyncClient | None = None,
    ) -> None:
        if isinstance(algorithms, str):
            raise ValueError("algorithms must be a list of algorithm names, not one string")
        algs = frozenset(algorithms)
        if not algs or not algs <= ASYMMETRIC_ALGS:
            raise ValueError("algorithms must be a non-empty list of asymmetric JWS algorithms")
        if not issuer.startswith("https://"):
            raise ValueError("issuer must be an https URL")
        if not audience:
            raise ValueError("audience is required")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        if not 0 < refresh_interval <= max_age:
            raise ValueError("refresh_interval must be positive and at most max_age")
        memo_ttl = refresh_interval if memo_ttl is None else memo_ttl
        if not 0 <= memo_ttl <= refresh_interval:
            raise ValueError("memo_ttl must be between 0 and refresh_interval")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algs
        self.realm = realm if realm is not None else audience
        self.leeway = leeway
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.memo_ttl = memo_ttl
        self.memo_size = max(0, memo_size)
        self.jwks_fetches = 0
        self._jwks_uri = jwks_uri
        self._clock = clock
        self._ca = ca
        self._tls_context: ssl.SSLContext | bool | None = None
        self._client = http  # made on first fetch: a default client loads the CA bundle (~20 ms of CPU)
        self._async_http = async_http
        self._static = False
        self._keyset = KeySet(keys={}, fetched_at=float("-inf"))
        self._attempted_at = float("-inf")
        self._lock = threading.Lock()
        self._alock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._headers: dict[str, tuple[str, str]] = {}
        self._memo: dict[bytes, tuple[AccessToken, VerificationKey, float]] = {}

    @classmethod
    def from_jwks(
        cls, jwks: Mapping[str, Any], *, issuer: str, audience: str, algorithms: Iterable[str], **options: Any
    ) -> TokenValidator:
        """A validator over a fixed key set: never fetches anything (offline use and tests)."""
        validator = cls(issuer=issuer, audience=audience, algorithms=algorithms, **options)
        validator._static = True
        validator._keyset = validator._parse_jwks(dict(jwks), now=validator._clock())
        return validator

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def _tls(self) -> ssl.SSLContext | bool:
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context(cafile=self._ca) if self._ca else True
        return self._tls_context

    @property
    def _http(self) -> httpx.Client:
        """The JWKS client, made when first needed: a `from_jwks` validator never fetches, and one made
        per request or per test should not pay for loading a trust store it never uses."""
        if self._client is None:
            self._client = httpx.Client(verify=self._tls, follow_redirects=False, timeout=10)
        return self._client

    @property
    def kids(self) -> frozenset[str]:
        return frozenset(self._keyset.keys)

    # -- key set -------------------------------------------------------------------------------

    def _parse_jwks(self, jwks: dict[str, Any], *, now: float) -> KeySet:
        return parse_jwks(jwks, self.algorithms, self._keyset, now=now)

    def _needs_keys(self, kid: str | None, now: float) -> bool:
        """The cached JWKS is stale or lacks `kid` (checked without the lock, on every validation)."""
        if self._static:
            return False
        keyset = self._keyset
        return now - keyset.fetched_at >= self.max_age or (kid is not None and kid not in keyset.keys)

    def _wants_fetch(self, kid: str | None, now: float) -> bool:
        """Under the fetch lock: needed, and no attempt within the last `refresh_interval`."""
        return self._needs_keys(kid, now) and now - self._attempted_at >= self.refresh_interval

    def _usable(self, now: float) -> Mapping[str, VerificationKey]:
        keyset = self._keyset
        if not self._static and now - keyset.fetched_at >= self.max_age:
            raise KeysUnavailable("signing keys are stale and could not be refreshed")
        return keyset.keys

    def _metadata_jwks_uri(self, doc: dict[str, Any]) -> str:
        if doc.get("issuer") != self.issuer:
            raise KeysUnavailable("issuer metadata does not match the configured issuer")
        return https_url(doc.get("jwks_uri"))

    def refresh(self) -> None:
        """Fetch the JWKS now (synchronously), whatever the cache says."""
        try:
            if self._jwks_uri is None:
                url = https_url(self.issuer + "/.well-known/openid-configuration")
                self._jwks_uri = self._metadata_jwks_uri(metadata_json(self._http.get(url)))
            self.jwks_fetches += 1
            jwks = metadata_json(self._http.get(https_url(self._jwks_uri)))
        except httpx.HTTPError:
            raise KeysUnavailable("could not fetch issuer metadata") from None
        self._keyset = self._parse_jwks(jwks, now=self._clock())

    async def arefresh(self) -> None:
        """Fetch the JWKS now, asynchronously."""
        client = self._async_http or httpx.AsyncClient(verify=self._tls, follow_redirects=False, timeout=10)
        try:
            if self._jwks_uri is None:
                url = https_url(self.issuer + "/.well-known/openid-configuration")
                self._jwks_uri = self._metadata_jwks_uri(metadata_json(await client.get(url)))
            self.jwks_fetches += 1
            jwks = metadata_json(await client.get(https_url(self._jwks_uri)))
        except httpx.HTTPError:
            raise KeysUnavailable("could not fetch issuer metadata") from None
        finally:
            if client is not self._async_http:
                await client.aclose()
        self._keyset = self._parse_jwks(jwks, now=self._clock())

    def _sync_keys(self, kid: str | None, now: float) -> Mapping[str, VerificationKey]:
        if self._needs_keys(kid, now):
            with self._lock:
                now = self._clock()
                if self._wants_fetch(kid, now):  # another thread may have fetched meanwhile
                    self._attempted_at = now
                    self.refresh()
        return self._usable(now)

    def _async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._alock is None or self._alock[0] is not loop:
            self._alock = (loop, asyncio.Lock())
        return self._alock[1]

    async def _async_keys(self, kid: str | None, now: float) -> Mapping[str, VerificationKey]:
        if self._needs_keys(kid, now):
            async with self._async_lock():
                now = self._clock()
                if self._wants_fetch(kid, now):
                    self._attempted_at = now
                    await self.arefresh()
        return self._usable(now)

    # -- tokens --------------------------------------------------------------------------------

    def _remembered(self, digest: bytes, keys: Mapping[str, VerificationKey], now: float) -> AccessToken | None:
        entry = self._memo.get(digest)
        if entry is None:
            return None
        token, key, until = entry
        if now < until and keys.get(key.kid) is key:
            return token
        self._memo.pop(digest, None)
        return None

    def _remember(self, digest: bytes, token: AccessToken, key: VerificationKey, now: float) -> None:
        if self.memo_size == 0 or self.memo_ttl == 0:
            return
        memo = self._memo
        if len(memo) >= self.memo_size:
            self._make_room(memo, now)
        memo[digest] = (token, key, min(token.expires_at, now + self.memo_ttl))

    def _make_room(self, memo: dict[bytes, tuple[AccessToken, VerificationKey, float]], now: float) -> None:
        """Free an eighth of a full memo at once: the stale entries, then the oldest (a dict keeps
        insertion order). One pass over the memo per `memo_size // 8` new tokens: a memo full of fresh
        tokens, the steady state of a busy resource server, cost a whole pass on every new token before
        (~0.4 ms at 10,000 entries, ten times the validation itself; docs/verify.md). An entry another
        thread removed meanwhile is fine; one that changed the memo under the pass empties it."""
        keep = self.memo_size - max(1, self.memo_size // 8)
        try:
            for stale in [d for d, (_, _, until) in memo.items() if until <= now]:
                memo.pop(stale, None)
            # The oldest in one pass: popping `next(iter(memo))` one by one walked again the slots
            # the pops before had emptied (a dict keeps them until it resizes), k²/2 steps for k.
            for oldest in list(islice(memo, max(0, len(memo) - keep))):
                memo.pop(oldest, None)
        except RuntimeError:
            memo.clear()

    def _parse(self, token: str, data: bytes) -> _Parsed:
        """Split and decode `token` (`data` is its UTF-8 encoding). `b64u_decode` refuses anything but
        the canonical url-safe encoding (J19: padding, `+` `/`, line breaks, non-ASCII), so once both
        segments have decoded, `token` is ASCII and the signing input is a slice of `data`."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a compact JWS")  # a JWE has five (J08)
        head, payload, sig = parts
        cached = self._headers.get(head)
        if cached is None:
            try:
                header = check_compact(token, max_length=MAX_TOKEN_LENGTH)
            except MalformedJose as exc:
                raise InvalidToken(str(exc)) from None
            cached = self._check_header(header)
        if not payload or not sig:
            raise InvalidToken("invalid base64url segment")
        try:
            signature, claims = b64u_decode(sig), b64u_decode(payload)
        except MalformedJose:
            raise InvalidToken("invalid base64url") from None
        alg, kid = cached
        return _Parsed(kid, alg, head, data[: len(head) + 1 + len(payload)], signature, claims)

    def _check_header(self, header: dict[str, Any]) -> tuple[str, str]:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("algorithm not allowed")  # none, HS256, anything not configured (J01/J02)
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("wrong typ")  # J15
        if "cty" in header:
            raise InvalidToken("nested token")  # J08
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("no kid")
        return alg, kid  # jku, x5u, jwk and x5c are never read (J05/J06)

    def _finish(self, parsed: _Parsed, digest: bytes, keys: Mapping[str, VerificationKey], now: float) -> AccessToken:
        key = keys.get(parsed.kid)  # an opaque dictionary lookup, whatever the kid holds (J04)
        if key is None:
            raise InvalidToken("unknown kid")
        if key.alg != parsed.alg:
            raise InvalidToken("algorithm does not match the key")
        if not verify_signature(key, parsed.signing_input, parsed.signature):
            raise InvalidToken("bad signature")
        if parsed.header_segment not in self._headers:  # cached only after a good signature
            if len(self._headers) >= MAX_CACHED_HEADERS:
                self._headers.clear()
            self._headers[parsed.header_segment] = (parsed.alg, parsed.kid)
        try:
            claims = loads_strict(parsed.payload)
        except MalformedJose as exc:
            raise InvalidToken(str(exc)) from None
        if not isinstance(claims, dict):
            raise InvalidToken("claims are not an object")
        if "cnf" in claims:
            raise InvalidToken("sender-constrained token presented as a bearer token")  # J18
        access = check_access_token(claims, issuer=self.issuer, audience=self.audience, now=now,
                                    leeway=self.leeway)
        self._remember(digest, access, key, now)
        return access

    @staticmethod
    def _encoded(token: object) -> bytes:
        if not isinstance(token, str):
            raise InvalidToken("token is not a string")
        if len(token) > MAX_TOKEN_LENGTH:  # before any parsing or hashing (J09)
            raise TokenTooLarge("token too large")
        return token.encode()

    def validate(self, token: str) -> AccessToken:
        """Validate a bearer token (blocking if the JWKS must be fetched). Raises `InvalidToken`."""
        data = self._encoded(token)
        digest = sha256(data).digest()
        now = self._clock()
        keys = self._sync_keys(None, now)
        hit = self._remembered(digest, keys, now)
        if hit is not None:
            return hit
        parsed = self._parse(token, data)
        if parsed.kid not in keys:
            keys = self._sync_keys(parsed.kid, now)
        return self._finish(parsed, digest, keys, now)

    async def avalidate(self, token: str) -> AccessToken:
        """Like `validate`, fetching the JWKS with httpx.AsyncClient (one fetch at a time)."""
        data = self._encoded(token)
        digest = sha256(data).digest()
        now = self._clock()
        keys = await self._async_keys(None, now)
        hit = self._remembered(digest, keys, now)
        if hit is not None:
            return hit
        parsed = self._parse(token, data)
        if parsed.kid not in keys:
            keys = await self._async_keys(parsed.kid, now)
        return self._finish(parsed, digest, keys, now)


__all__ = ["TokenValidator", "authorize"]

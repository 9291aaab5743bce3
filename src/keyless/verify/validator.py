"""`TokenValidator`: verify Keyless access tokens offline against the issuer's published JWKS.

Issuer, audience and algorithms are required arguments (catalog J03: no defaults to forget). Keys
come only from the configured issuer's JWKS (never from token headers, J05/J06), each bound to its
own `alg`; an unknown `kid` triggers at most one JWKS refresh per `refresh_interval` (E06-style
limiter). This is the minimal synchronous validator; the full library (async, middleware, token
memo) grows here.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from keyless.jose.jwk import public_key_from_jwk
from keyless.jose.jws import ASYMMETRIC_ALGS, InvalidJws, VerificationKey, unverified_header, verify
from keyless.verify.claims import AccessToken, InvalidToken, check_access_token

MAX_JWKS_BYTES = 64 * 1024
MAX_KEYS = 50


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
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
    ) -> None:
        algs = frozenset(algorithms)
        if not algs or not algs <= ASYMMETRIC_ALGS:
            raise ValueError("algorithms must be a non-empty list of asymmetric JWS algorithms")
        if not issuer.startswith("https://"):
            raise ValueError("issuer must be an https URL")
        self.issuer = issuer
        self.audience = audience
        self.algorithms = algs
        self._jwks_uri = jwks_uri
        self._leeway = leeway
        self._refresh_interval = refresh_interval
        self._clock = clock
        trust = ssl.create_default_context(cafile=ca) if ca else True
        self._http = http or httpx.Client(verify=trust, follow_redirects=False, timeout=10)
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _discover(self) -> str:
        if self._jwks_uri is None:
            doc = self._get_json(self.issuer + "/.well-known/openid-configuration")
            if doc.get("issuer") != self.issuer or not isinstance(doc.get("jwks_uri"), str):
                raise InvalidToken("issuer metadata does not match the configured issuer")
            self._jwks_uri = doc["jwks_uri"]
        return self._jwks_uri

    def _get_json(self, url: str) -> dict[str, Any]:
        if not url.startswith("https://"):
            raise InvalidToken("refusing a non-https metadata URL")
        resp = self._http.get(url)
        if resp.status_code != 200 or len(resp.content) > MAX_JWKS_BYTES:
            raise InvalidToken("could not fetch issuer metadata")
        data = resp.json()
        if not isinstance(data, dict):
            raise InvalidToken("issuer metadata is not an object")
        return data

    def refresh(self) -> None:
        jwks = self._get_json(self._discover())
        keys: dict[str, VerificationKey] = {}
        seen: set[str] = set()
        for jwk in (jwks.get("keys") or [])[:MAX_KEYS]:
            if not isinstance(jwk, dict):
                continue
            kid, alg = jwk.get("kid"), jwk.get("alg")
            if not isinstance(kid, str) or alg not in self.algorithms or jwk.get("use", "sig") != "sig":
                continue
            if kid in seen:  # an ambiguous kid verifies nothing (catalog I05)
                keys.pop(kid, None)
                continue
            seen.add(kid)
            try:
                keys[kid] = VerificationKey(kid=kid, alg=alg, key=public_key_from_jwk(jwk))
            except ValueError:
                continue
        self._keys = keys
        self._fetched_at = self._clock()

    def _key_for(self, kid: object) -> None:
        if isinstance(kid, str) and kid in self._keys:
            return
        with self._lock:
            if self._clock() - self._fetched_at >= self._refresh_interval:
                self.refresh()

    def validate(self, token: str) -> AccessToken:
        try:
            self._key_for(unverified_header(token).get("kid"))
            claims = verify(token, keys=self._keys, algorithms=self.algorithms, typ="at+jwt")
        except InvalidJws as exc:
            raise InvalidToken(exc.reason) from None
        return check_access_token(
            claims, issuer=self.issuer, audience=self.audience, now=self._clock(), leeway=self._leeway
        )

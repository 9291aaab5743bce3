"""A `client_assertion` decoded once per request (RFC 7521 §4.2, RFC 7523 §2.2; issue 12 scope 3).

The failure throttle and the sign-in log need the subject an assertion claims before anything is
verified, and client authentication needs its header and claims: all of them read this one object,
so the base64url and strict JSON pass (`keyless.jose.hygiene.split_compact`) runs once, not three
times. Decoding never raises: what went wrong is kept and raised by `ClientAssertion.parsed` at the
point of the token endpoint where it always was (after the method and assertion-type checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keyless.jose.claims import check_registered
from keyless.jose.hygiene import InvalidClaim, MalformedJose, UnacceptableNumber, UnsupportedCritical, split_compact
from keyless.oauth.errors import InvalidClient, InvalidRequest

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
MAX_ASSERTION = 16 * 1024


@dataclass(slots=True)  # built per token: not frozen (a frozen __init__ costs ~3x; issue 18)
class ClientAssertion:
    """`header`/`claims` are None when the shape pass refused the text; `problem` says why."""

    text: str = field(repr=False)
    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    problem: MalformedJose | None

    @classmethod
    def decode(cls, text: str) -> ClientAssertion:
        """The shape pass (size, base64url, duplicate members, `crit`) without the registered-claim
        type checks, so that a badly typed claim still leaves the claimed `sub` readable for the log."""
        try:
            header, claims = split_compact(text, max_length=MAX_ASSERTION, allow_padding=True, claim_types=False)
        except MalformedJose as exc:
            return cls(text=text, header=None, claims=None, problem=exc)
        return cls(text=text, header=header, claims=claims, problem=None)

    @property
    def subject(self) -> str | None:
        """The unverified `sub`: only for rate limiting and the sign-in log."""
        sub = self.claims.get("sub") if self.claims is not None else None
        return sub if isinstance(sub, str) else None

    def parsed(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Header and claims once the registered claims have their types too; raises what
        `split_compact` (with claim types) would have raised on the text."""
        if self.header is None or self.claims is None:
            raise self.problem or MalformedJose("not a compact JWS")
        check_registered(self.claims)
        return self.header, self.claims

    def checked(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """`parsed`, with a refusal as the token endpoint answers it: a claim of the wrong type or
        range, a non-finite number or an unsupported `crit` is a bad credential (`invalid_client`,
        catalog B19), anything else a malformed request."""
        try:
            return self.parsed()
        except UnsupportedCritical:
            raise InvalidClient(detail="unsupported_crit") from None  # B19
        except InvalidClaim as exc:  # well-formed JSON, a claim of the wrong type or range: a bad assertion
            raise InvalidClient(detail=f"claim_invalid:{exc.claim}") from None
        except UnacceptableNumber:  # NaN, Infinity, 1e400, an integer of hundreds of digits
            raise InvalidClient(detail="number_out_of_range") from None
        except MalformedJose as exc:
            raise InvalidRequest("invalid client_assertion format", detail=f"assertion_format:{exc}"[:120]) from None


def jwt_bearer(assertion: ClientAssertion | None, assertion_type: str | None) -> ClientAssertion:
    """The request's client assertion, once its type is the JWT bearer one (RFC 7523 §2.2): the first
    check of every assertion-based method, before the assertion is looked at."""
    if assertion_type != ASSERTION_TYPE or assertion is None:
        raise InvalidRequest("client_assertion_type must be jwt-bearer with a client_assertion",
                             detail="assertion_type")
    return assertion

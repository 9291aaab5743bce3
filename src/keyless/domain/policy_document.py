"""The policy document: how a `keyless.domain.policies.Policy` is written as JSON, on the wire (the
management API), in the store and in `keyless policy set --file` (docs/policies.md). Parsing is
strict: an unknown rule or member is refused, since a misspelt rule must not silently allow everything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import fields

from keyless.domain.policies import (
    KEY_TYPES,
    MAX_LIST,
    MODES,
    AudienceModeRule,
    BlockSecrets,
    FederationRule,
    InternalCa,
    KeySpec,
    KeyTypes,
    MaxLifetime,
    Mode,
    Network,
    Policy,
    PolicyError,
    Reaping,
    Rule,
    SourceNetworks,
)


def _mode(rule: str, doc: Mapping[str, object]) -> Mode:
    mode = doc.get("mode")
    if mode not in MODES:
        raise PolicyError("invalid_policy", f"{rule}.mode must be off, audit or enforce")
    return mode


def _strings(rule: str, name: str, value: object, limit: int = 512) -> tuple[str, ...]:
    if value is None:
        return ()
    if (not isinstance(value, list) or len(value) > MAX_LIST
            or not all(isinstance(v, str) and 0 < len(v) <= limit for v in value)):
        raise PolicyError("invalid_policy", f"{rule}.{name} must be a list of at most {MAX_LIST} strings")
    return tuple(dict.fromkeys(value))


def _seconds(rule: str, name: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= 100 * 365 * 86400:
        raise PolicyError("invalid_policy", f"{rule}.{name} must be a number of seconds, at least 60")
    return value


def _days(rule: str, name: str, value: object, least: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= MAX_DAYS:
        raise PolicyError("invalid_policy", f"{rule}.{name} must be a whole number of days, {least} to {MAX_DAYS}")
    return value


def _reaping(mode: Mode, doc: Mapping[str, object]) -> Reaping:
    """`unused_days` is at least 8, so the warning 7 days ahead comes after the credential was made."""
    unused = _days("reaping", "unused_days", doc.get("unused_days"), 8)
    delete = _days("reaping", "delete_after_days", doc.get("delete_after_days"), 1)
    if unused is None and delete is None and mode != "off":
        raise PolicyError("invalid_policy", "reaping needs unused_days, delete_after_days or both")
    return Reaping(mode, unused, delete)


def _networks(value: object) -> tuple[Network, ...]:
    out = []
    for cidr in _strings("source_networks", "networks", value, 64):
        try:
            out.append(ipaddress.ip_network(cidr, strict=True))
        except ValueError:
            raise PolicyError("invalid_policy", "source_networks.networks must be CIDRs such as 10.20.0.0/16 "
                                                "or fd00::/8 (no host bits set)") from None
    return tuple(out)


def _key_specs(value: object) -> tuple[KeySpec, ...]:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise PolicyError("invalid_policy", "key_types.allowed must be a list of {type, min_size}")
    specs = []
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in KEY_TYPES or not set(item) <= {"type", "min_size"}:
            raise PolicyError("invalid_policy", "key_types.allowed entries are {type: RSA|EC|Ed25519, min_size}")
        size = item.get("min_size", 0)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= 16384:
            raise PolicyError("invalid_policy", "key_types.allowed min_size must be 0 to 16384 bits")
        specs.append(KeySpec(item["type"], size))
    return tuple(specs)


_FIELDS: dict[str, set[str]] = {
    "block_secrets": {"mode", "allowed_apps"},
    "max_lifetime": {"mode", "secret", "certificate"},
    "key_types": {"mode", "allowed"},
    "internal_ca": {"mode"},
    "federation": {"mode", "issuers", "max_token_lifetime"},
    "audience_mode": {"mode", "required"},
    "source_networks": {"mode", "networks"},
    "reaping": {"mode", "unused_days", "delete_after_days"},
}
MAX_DAYS = 3650


def _rule(name: str, doc: Mapping[str, object]) -> Rule:
    mode = _mode(name, doc)
    if name == "block_secrets":
        return BlockSecrets(mode, _strings(name, "allowed_apps", doc.get("allowed_apps"), 64))
    if name == "max_lifetime":
        return MaxLifetime(mode, _seconds(name, "secret", doc.get("secret")),
                           _seconds(name, "certificate", doc.get("certificate")))
    if name == "key_types":
        return KeyTypes(mode, _key_specs(doc.get("allowed", [])))
    if name == "internal_ca":
        return InternalCa(mode)
    if name == "federation":
        return FederationRule(mode, _strings(name, "issuers", doc.get("issuers")),
                              _seconds(name, "max_token_lifetime", doc.get("max_token_lifetime")))
    if name == "audience_mode":
        required = doc.get("required", "strict")
        if required not in ("entra", "strict"):
            raise PolicyError("invalid_policy", "audience_mode.required must be entra or strict")
        return AudienceModeRule(mode, required)
    if name == "reaping":
        return _reaping(mode, doc)
    return SourceNetworks(mode, _networks(doc.get("networks")))


def policy_from_json(doc: object) -> Policy:
    """The policy a JSON document describes; `PolicyError` for anything else (unknown rules and
    members included: a misspelt rule must not silently allow everything)."""
    if not isinstance(doc, dict):
        raise PolicyError("invalid_policy", "a policy is a JSON object of rules")
    unknown = set(doc) - set(_FIELDS)
    if unknown:
        raise PolicyError("invalid_policy", f"unknown rule; rules are {', '.join(_FIELDS)}")
    rules: dict[str, Rule] = {}
    for name, body in doc.items():
        if body is None:
            continue
        if not isinstance(body, dict) or not set(body) <= _FIELDS[name]:
            raise PolicyError("invalid_policy", f"{name} takes {', '.join(sorted(_FIELDS[name]))}")
        rules[name] = _rule(name, body)
    return Policy(**rules)  # type: ignore[arg-type]


def policy_to_json(policy: Policy) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in fields(policy):
        rule = getattr(policy, f.name)
        if rule is None:
            continue
        body: dict[str, object] = {}
        for rf in fields(rule):
            value = getattr(rule, rf.name)
            if isinstance(value, tuple):
                value = [{"type": v.type, "min_size": v.min_size} if isinstance(v, KeySpec) else str(v)
                         for v in value]
            body[rf.name] = value
        out[f.name] = body
    return out

"""`requests.auth.AuthBase` adapter (imported only when `requests_auth()` is called)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import requests
import requests.auth


class _SyncTokens(Protocol):
    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class RequestsAuth(requests.auth.AuthBase):
    def __init__(self, credential: _SyncTokens, scopes: Sequence[str]) -> None:
        self._credential = credential
        self._scopes = tuple(scopes)

    def __repr__(self) -> str:
        return f"RequestsAuth({self._credential!r}, scopes={self._scopes!r})"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._credential.get_token(*self._scopes).token}"
        return r

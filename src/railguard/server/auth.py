"""API keys: ``Authorization: Bearer <key>``, compared in constant time; a key is known by a short hash.

The server keeps only SHA-256 digests of the keys. A presented key is hashed and compared with every digest
through ``hmac.compare_digest``, all of them every time, so neither the key's content nor which key matched
shows in the timing. The key id written to the audit log is the first 12 hex digits of the digest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from .errors import APIError

KEY_ID_HEX = 12


def key_id(key: str) -> str:
    """The short, non-secret name of a key: ``key_`` plus 12 hex digits of its SHA-256."""
    return "key_" + _digest(key).hex()[:KEY_ID_HEX]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


class KeyRing:
    """The keys a server accepts; empty means the server is open."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(k) for k in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def identify(self, authorization: str | None) -> str | None:
        """The key id of a valid ``Authorization`` header; None on an open server; 401 APIError otherwise."""
        if not self._digests:
            return None
        if not authorization:
            raise APIError(401, "this server needs an API key: send 'Authorization: Bearer <key>'",
                           code="missing_api_key")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise APIError(401, "the Authorization header must read 'Bearer <key>'", code="invalid_api_key")
        presented = _digest(token)
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(presented, digest)
        if not matched:
            raise APIError(401, "incorrect API key provided", code="invalid_api_key")
        return "key_" + presented.hex()[:KEY_ID_HEX]

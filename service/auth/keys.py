"""API key format, hashing and scope rules. Keys are 256-bit random secrets, so a single SHA-256 is a
sound verifier; comparison is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCOPES = ("ingest", "read", "operate", "admin")
# a scope grants itself plus these
IMPLIED = {"admin": set(SCOPES), "operate": {"operate", "read"}, "read": {"read"}, "ingest": {"ingest"}}
KEY_PREFIX = "fsk"


def generate_key() -> tuple[str, str]:
    """A new key and its lookup prefix: `fsk_<prefix>_<secret>`."""
    prefix = secrets.token_hex(6)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def prefix_of(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 12:
        return None
    return parts[1]


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)


def grants(scopes: list[str], needed: str) -> bool:
    return any(needed in IMPLIED.get(scope, set()) for scope in scopes)

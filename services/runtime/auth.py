"""API keys mapped to a role and a scope: ``carrier:<id>``, ``operator:<hub>``,
``official:<city>``, ``admin``.

Keys live in a YAML file (``MICROHUB_API_KEYS_FILE``), as plain ``key:`` entries (demo)
or as ``sha256:`` digests (production: the file then holds no secret). Callers send
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; a browser signs in once
(services/web) and then carries a signed, HttpOnly, SameSite=Strict session cookie that
names the key by its digest: keys never travel in URLs or pages.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from fastapi import HTTPException, Request, status

from services.runtime.settings import Settings
from services.runtime.yamlfile import load_listing

log = logging.getLogger(__name__)

DEMO_KEYS = Path(__file__).parent / "data" / "demo-api-keys.yaml"
# what a signed-in session holds: the digest of the key it signed in with (so a key that
# is removed from the keys file signs its sessions out too)
SESSION_KEY = "key_sha256"


class Role(StrEnum):
    CARRIER = "carrier"
    OPERATOR = "operator"
    OFFICIAL = "official"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    role: Role
    scope: str | None  # carrier id, hub id or city id; None for admin
    name: str

    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def may_act_as_carrier(self, carrier_id: str) -> bool:
        return self.is_admin() or (self.role is Role.CARRIER and self.scope == carrier_id)

    def may_operate_hub(self, hub_id: str) -> bool:
        return self.is_admin() or (self.role is Role.OPERATOR and self.scope == hub_id)

    def may_read_city(self, city_id: str) -> bool:
        return self.is_admin() or (self.role is Role.OFFICIAL and self.scope == city_id)


class KeyFileError(ValueError):
    pass


def parse_scope(text: str) -> tuple[Role, str | None]:
    if text == "admin":
        return Role.ADMIN, None
    role, _, scope = text.partition(":")
    try:
        parsed = Role(role)
    except ValueError as exc:
        raise KeyFileError(
            f"unknown role in scope {text!r}: use carrier:, operator:, official: or admin"
        ) from exc
    if parsed is Role.ADMIN or not scope:
        raise KeyFileError(f"scope {text!r} must look like {role}:<id>")
    return parsed, scope


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, entries: dict[str, Principal]) -> None:
        self._by_digest = entries

    @classmethod
    def load(cls, path: Path | None = None) -> ApiKeys:
        path = path or DEMO_KEYS
        document = load_listing(path, what="API keys file", key="keys", error=KeyFileError)
        entries: dict[str, Principal] = {}
        for index, entry in enumerate(document["keys"], start=1):
            if not isinstance(entry, dict) or "scope" not in entry:
                raise KeyFileError(f"{path}: key #{index} needs a 'scope'")
            if ("key" in entry) == ("sha256" in entry):
                raise KeyFileError(f"{path}: key #{index} needs exactly one of 'key' or 'sha256'")
            role, scope = parse_scope(str(entry["scope"]))
            hashed = digest(str(entry["key"])) if "key" in entry else str(entry["sha256"]).lower()
            entries[hashed] = Principal(role, scope, str(entry.get("name", f"key #{index}")))
        return cls(entries)

    def shared_with(self, other: ApiKeys) -> list[str]:
        """The names here of the keys ``other`` holds too."""
        return sorted(p.name for d, p in self._by_digest.items() if d in other._by_digest)

    def authenticate(self, key: str) -> Principal | None:
        return self.by_digest(digest(key))

    def by_digest(self, wanted: str) -> Principal | None:
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, wanted):
                return principal
        return None

    def caller(self, request: Request) -> Principal | None:
        """Who sends ``request``: the key in its headers, else its signed-in session
        (raises 401 for a key that is not known; None when it carries none)."""
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header.lower().startswith("bearer ") else None
        key = key or request.headers.get("x-api-key")
        if key:
            found = self.authenticate(key)
            if found is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "unknown API key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return found
        session = request.scope.get("session")  # SessionMiddleware's, when installed
        signed_in = session.get(SESSION_KEY) if isinstance(session, dict) else None
        return self.by_digest(signed_in) if isinstance(signed_in, str) else None

    def principal_dependency(self):
        """A FastAPI dependency: the caller's principal, or 401."""

        async def principal(request: Request) -> Principal:
            found = self.caller(request)
            if found is None:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
                    "(people sign in at /ui/)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return found

        return principal


def forbid(message: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, message)


def load_api_keys(settings: Settings) -> ApiKeys:
    """The keys the public API accepts, failing closed: without MICROHUB_API_KEYS_FILE the
    API does not start, unless in demo mode (MICROHUB_DEMO_MODE), which serves the public
    demo keys and says so; outside demo mode a keys file holding a demo key is refused
    (anyone can read those keys in this repository)."""
    path = settings.api_keys_file
    if path is None:
        if not settings.demo_mode:
            raise KeyFileError(
                "MICROHUB_API_KEYS_FILE is not set: the API does not start without API keys. "
                "Write a keys file (`microhub keys hash <key>` gives an entry that holds no "
                "secret) and point MICROHUB_API_KEYS_FILE at it; MICROHUB_DEMO_MODE=true "
                "serves the public demo keys instead, for a demo on this machine only"
            )
        log.warning(
            "DEMO MODE: the API accepts the public demo keys (%s), demo-admin included; "
            "never expose it",
            DEMO_KEYS,
        )
        return ApiKeys.load(DEMO_KEYS)
    keys = ApiKeys.load(path)
    if not settings.demo_mode:
        public = keys.shared_with(ApiKeys.load(DEMO_KEYS))
        if public:
            raise KeyFileError(
                f"{path} holds public demo keys ({', '.join(public)}): refused outside demo "
                "mode (MICROHUB_DEMO_MODE); give those principals keys of their own"
            )
    return keys

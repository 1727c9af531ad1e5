"""Console sessions: signed, expiring cookies that name a credential without carrying it.

The session cookie holds ``{"k": key id | null for the admin, "f": fingerprint, "c": csrf}``,
signed (HMAC-SHA1 via itsdangerous, with a timestamp) by the console secret. It never holds the
token: a key session is re-checked against its API key row on every request (a revoked key ends
its sessions at once), and an admin session carries a keyed hash of the admin token, so a new admin
token ends the old sessions. The CSRF token of the forms lives inside the signed cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.auth.principal import Principal
from app.config import Settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "ip_console"
LOGIN_COOKIE = "ip_console_login"
LOGIN_FORM_SECONDS = 3600
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


@dataclass(frozen=True)
class SessionClaim:
    """What a valid session cookie says: whose session, and its CSRF token."""

    key_id: int | None  # None: the admin
    fingerprint: str
    csrf: str


@dataclass(frozen=True)
class ConsoleUser:
    """A logged-in person: the API principal their token stands for, and their CSRF token."""

    principal: Principal
    csrf: str
    label: str

    @property
    def can_triage(self) -> bool:
        """Whether the triage controls are shown (and accepted)."""
        return self.principal.has_scope("triage")


def load_secret(settings: Settings) -> str:
    """The signing key: the setting, else ``<data dir>/console-secret`` (created once, mode 600).

    Several processes may start together: the first to create the file wins, the others read it.
    Without a writable data dir, a per-process key is used (logins then hold on this process
    only) and a warning says so.
    """
    if settings.console_secret:
        return settings.console_secret
    path = settings.console_secret_path
    try:
        if not path.is_file():
            path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48) + "\n")
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    except OSError as exc:
        log.warning("console secret not stored in %s (%s): using one per process", path, exc)
    return secrets.token_urlsafe(48)


class Signer:
    """Signs and checks the console's cookies with one secret."""

    def __init__(self, secret: str, *, max_age_seconds: int) -> None:
        self._secret = secret.encode()
        self._sessions = URLSafeTimedSerializer(secret, salt="console-session")
        self._logins = URLSafeTimedSerializer(secret, salt="console-login")
        self.max_age = max_age_seconds

    def fingerprint(self, credential: str) -> str:
        """A keyed hash naming a credential (the admin token, a key's hash), never revealing it."""
        return hmac.new(self._secret, credential.encode(), hashlib.sha256).hexdigest()[:32]

    def session_cookie(self, key_id: int | None, fingerprint: str) -> tuple[str, str]:
        """A new session cookie value and its CSRF token."""
        csrf = secrets.token_urlsafe(24)
        return self._sessions.dumps({"k": key_id, "f": fingerprint, "c": csrf}), csrf

    def read_session(self, value: str | None) -> SessionClaim | None:
        """The claim of a session cookie; None if missing, forged, malformed or expired."""
        data = _loads(self._sessions, value, self.max_age)
        if not isinstance(data, dict):
            return None
        key_id, fingerprint, csrf = data.get("k"), data.get("f"), data.get("c")
        if key_id is not None and (not isinstance(key_id, int) or isinstance(key_id, bool)):
            return None
        if not isinstance(fingerprint, str) or not isinstance(csrf, str) or not csrf:
            return None
        return SessionClaim(key_id=key_id, fingerprint=fingerprint, csrf=csrf)

    def login_cookie(self) -> tuple[str, str]:
        """A cookie for the login form and the CSRF token the form must send back."""
        csrf = secrets.token_urlsafe(24)
        return self._logins.dumps(csrf), csrf

    def login_csrf(self, value: str | None) -> str | None:
        """The CSRF token of a login-form cookie; None if missing, forged or expired."""
        data = _loads(self._logins, value, LOGIN_FORM_SECONDS)
        return data if isinstance(data, str) and data else None


def _loads(serializer: URLSafeTimedSerializer, value: str | None, max_age: int) -> Any:
    if not value or len(value) > 4096:
        return None
    try:
        return serializer.loads(value, max_age=max_age)
    except (BadSignature, ValueError, UnicodeError):
        return None


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token."""
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())

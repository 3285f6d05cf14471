"""The deployment's one answer-signing key: where each host reads it, and the check that every host's is
the same.

Devices trust one server key (built into the app); a host signing with another key is refused by them.
So the key is configured (``OVERAIR_SERVER_KEY_FILE``, or ``OVERAIR_SERVER_KEY`` holding the PEM text for
secret managers), and the first host to start records its fingerprint in the database: a host whose key
differs refuses to start. Only a SQLite deployment (one host by nature) makes a key of its own on first
start, in its data folder; on PostgreSQL overair never makes one, as each host would make a different one.
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from overair.config import Settings
from overair.db import Base, UTCDateTime, normalize_url, utcnow
from overair.packages import signing

FINGERPRINT = "server_key_fingerprint"
"""The :class:`ServerSetting` holding the SHA-256 fingerprint of the deployment's server key."""

CREATE_COMMAND = "overair keys server --create server-key.pem"


class ServerSetting(Base):
    """A fact about the whole deployment that every host must agree on (like the server key's
    fingerprint), by name."""

    __tablename__ = "server_settings"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ServerKeyRefused(Exception):
    """This host cannot sign answers for the deployment: no key is configured where one is needed, it
    cannot be read, or it is not the key the deployment recorded. ``message`` is one line for the
    operator, saying what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _pem_text(value: str) -> bytes:
    text = value.strip()
    if "\n" not in text and "\\n" in text:  # secret stores and .env files often keep newlines escaped
        text = text.replace("\\n", "\n")
    return text.encode() + b"\n"


def load_server_key(settings: Settings) -> Ed25519PrivateKey:
    """The key this host signs update-check answers with, from the configured secret or file.

    Without either: ``<data_dir>/server-key.pem``, made on first start when the database is SQLite and
    only read on PostgreSQL (a key made by one host would differ from every other host's). Raises
    :class:`ServerKeyRefused` for a key that is missing or set twice, and
    :class:`~overair.packages.signing.SigningError` for a key file that cannot be read.
    """
    secret = settings.server_key.get_secret_value()
    if secret and settings.server_key_file is not None:
        raise ServerKeyRefused(
            "OVERAIR_SERVER_KEY and OVERAIR_SERVER_KEY_FILE are both set: keep one (the PEM text in "
            "OVERAIR_SERVER_KEY, or the path of the key file in OVERAIR_SERVER_KEY_FILE)."
        )
    if secret:
        try:
            return signing.load_private_key(_pem_text(secret))
        except signing.SigningError as exc:
            raise ServerKeyRefused(
                f"OVERAIR_SERVER_KEY is not a usable server key: {exc.message}. Give it the whole PEM text "
                f"of the key file (make one with `{CREATE_COMMAND}`)."
            ) from None
    path = settings.resolved_server_key_file()
    if normalize_url(settings.resolved_database_url()).startswith("sqlite"):
        return signing.load_or_create_key_file(path)
    if settings.server_key_file is None and not path.exists():
        raise ServerKeyRefused(
            "No server key is configured, and on PostgreSQL every host must sign with the same one: make it "
            f"once with `{CREATE_COMMAND}`, copy the file to every host and set OVERAIR_SERVER_KEY_FILE to "
            "its path (or put its text in OVERAIR_SERVER_KEY)."
        )
    try:
        return signing.load_private_key(path.read_bytes())
    except OSError as exc:
        raise signing.SigningError(f"cannot read the key file {path}: {exc.strerror or exc}") from exc


def fingerprint_text(key: Ed25519PrivateKey) -> str:
    """The key's fingerprint as it is recorded and shown: ``SHA256:<hex of the public key's SHA-256>``."""
    return f"SHA256:{signing.fingerprint(key)}"


def check_server_key(sessions: sessionmaker[Session], key: Ed25519PrivateKey) -> bool:
    """Record ``key``'s fingerprint as the deployment's when none is recorded (True), or check that it is
    the recorded one (False); raise :class:`ServerKeyRefused` when it is not.

    Call it under the startup lock (:func:`overair.db.migrated`), so two first hosts never both record.
    """
    mine = fingerprint_text(key)
    with sessions.begin() as session:
        recorded = session.get(ServerSetting, FINGERPRINT)
        if recorded is None:
            session.add(ServerSetting(name=FINGERPRINT, value=mine, updated_at=utcnow()))
            return True
        if recorded.value != mine:
            raise ServerKeyRefused(
                f"This host's server key ({mine}) is not the deployment's ({recorded.value}, recorded in the "
                "database by the first host that started): devices would refuse this host's answers. Copy "
                "the key file from the first host and set OVERAIR_SERVER_KEY_FILE to it (or put its text in "
                "OVERAIR_SERVER_KEY)."
            )
    return False

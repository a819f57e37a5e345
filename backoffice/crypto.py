"""Encryption of the most sensitive field (the NIR), with Fernet (AES + HMAC), and key
rotation with ``MultiFernet``.

Keys: ``NIR_ENCRYPTION_KEYS``, a comma-separated list, newest first. The newest key
encrypts; every key of the list decrypts, so a new key is put in front and the old ones
stay behind it until ``backoffice nir rotate`` has re-encrypted every stored NIR with the
newest one (then the old keys can be dropped). ``NIR_ENCRYPTION_KEY`` (one key) is still
accepted. A key is a Fernet key (``Fernet.generate_key()``: 44 url-safe base64
characters); any other value is a passphrase from which a Fernet key is derived
(SHA-256 of ``nir:<value>``, the scheme of earlier versions, so that data encrypted then
stays readable when the old value is listed behind a new key).

In production (``BACKOFFICE_ENV=production``) the keys are mandatory: start-up fails
without them. Elsewhere, without keys, a fixed development key is derived from
``SECRET_KEY`` as before.

A value that no key can decrypt raises ``NirDecryptionError`` (and is logged): it is
never silently taken for an empty NIR. Screens show ``UNREADABLE_MESSAGE`` instead.

``mfa_fernet()`` is the key of the staff TOTP secrets (``MFA_ENCRYPTION_KEY``), separate
from the NIR keys.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import Flask, current_app

log = logging.getLogger(__name__)
EXTENSION_KEY = "nir_crypto"
UNREADABLE_MESSAGE = "NIR illisible : clé de chiffrement manquante"


class NirDecryptionError(Exception):
    """A stored NIR that none of the configured keys can decrypt."""

    def __init__(self, message: str = UNREADABLE_MESSAGE):
        super().__init__(message)
        self.message = message


class NirKeyMissing(RuntimeError):
    """No NIR key configured where one is mandatory (production)."""


def _fernet_for(value: str) -> Fernet:
    """A Fernet key as is; any other value (a passphrase) derived as earlier versions did."""
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return Fernet(value.encode())
    except (binascii.Error, ValueError):
        pass
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"nir:{value}".encode()).digest()))


def configured_keys(config) -> list[str]:
    """The NIR keys of ``config``, newest first (``NIR_ENCRYPTION_KEYS``, else the single
    ``NIR_ENCRYPTION_KEY``)."""
    keys = config.get("NIR_ENCRYPTION_KEYS") or ""
    if isinstance(keys, str):
        keys = keys.split(",")
    keys = [k.strip() for k in keys if k and k.strip()]
    if not keys and (config.get("NIR_ENCRYPTION_KEY") or "").strip():
        keys = [config["NIR_ENCRYPTION_KEY"].strip()]
    return keys


def build(config, *, production: bool) -> tuple[MultiFernet, Fernet]:
    """The ``MultiFernet`` of every key, and the newest key alone."""
    keys = configured_keys(config)
    if not keys:
        if production:
            raise NirKeyMissing(
                "NIR_ENCRYPTION_KEYS doit être défini en production (clés Fernet séparées "
                "par des virgules, la plus récente en premier).")
        keys = [config["SECRET_KEY"]]  # development only: derived, as before
    fernets = [_fernet_for(k) for k in keys]
    return MultiFernet(fernets), fernets[0]


def init_app(app: Flask) -> None:
    """Check and load the keys at start-up (a missing key in production stops it)."""
    production = os.environ.get("BACKOFFICE_ENV") == "production"
    app.extensions[EXTENSION_KEY] = (_cache_key(app.config),
                                     build(app.config, production=production))


def _cache_key(config) -> tuple:
    return tuple(configured_keys(config)) or (config["SECRET_KEY"],)


def _keys() -> tuple[MultiFernet, Fernet]:
    cache_key = _cache_key(current_app.config)
    cached = current_app.extensions.get(EXTENSION_KEY)
    if cached is None or cached[0] != cache_key:  # the keys changed (a test, a shell)
        production = os.environ.get("BACKOFFICE_ENV") == "production"
        cached = (cache_key, build(current_app.config, production=production))
        current_app.extensions[EXTENSION_KEY] = cached
    return cached[1]


def _multi() -> MultiFernet:
    return _keys()[0]


def encrypt(value: str | None) -> str | None:
    if not value:
        return None
    return _multi().encrypt(value.encode()).decode()


def decrypt(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return _multi().decrypt(token.encode()).decode()
    except InvalidToken:
        log.error("NIR illisible : aucune des clés NIR_ENCRYPTION_KEYS ne le déchiffre "
                  "(clé manquante ou donnée altérée).")
        raise NirDecryptionError() from None


def is_current(token: str) -> bool:
    """Whether ``token`` is encrypted with the newest key (nothing to rotate)."""
    try:
        _keys()[1].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """``token`` re-encrypted with the newest key (``NirDecryptionError`` when no key
    reads it)."""
    try:
        return _multi().rotate(token.encode()).decode()
    except InvalidToken:
        log.error("NIR illisible pendant la rotation des clés.")
        raise NirDecryptionError() from None
        return None


def mfa_fernet() -> Fernet:
    """The Fernet key of the staff TOTP secrets, derived from ``MFA_ENCRYPTION_KEY`` (or
    ``SECRET_KEY`` when unset); separate from the NIR key."""
    secret = current_app.config.get("MFA_ENCRYPTION_KEY") or current_app.config["SECRET_KEY"]
    key = base64.urlsafe_b64encode(hashlib.sha256(f"mfa:{secret}".encode()).digest())
    return Fernet(key)

"""Encryption of the most sensitive field (the NIR), with Fernet (AES + HMAC).

The key is derived from ``NIR_ENCRYPTION_KEY`` (or ``SECRET_KEY`` when unset).
``mfa_fernet()`` is the key of the staff TOTP secrets (``MFA_ENCRYPTION_KEY``).
"""
from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    secret = current_app.config.get("NIR_ENCRYPTION_KEY") or current_app.config["SECRET_KEY"]
    key = base64.urlsafe_b64encode(hashlib.sha256(f"nir:{secret}".encode()).digest())
    return Fernet(key)


def encrypt(value: str | None) -> str | None:
    if not value:
        return None
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str | None) -> str | None:
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def mfa_fernet() -> Fernet:
    """The Fernet key of the staff TOTP secrets, derived from ``MFA_ENCRYPTION_KEY`` (or
    ``SECRET_KEY`` when unset); separate from the NIR key."""
    secret = current_app.config.get("MFA_ENCRYPTION_KEY") or current_app.config["SECRET_KEY"]
    key = base64.urlsafe_b64encode(hashlib.sha256(f"mfa:{secret}".encode()).digest())
    return Fernet(key)

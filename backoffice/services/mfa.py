"""Second factor of staff accounts (``admin``, ``moderateur``, ``responsable_regles``):
TOTP codes (RFC 6238, pyotp) and single-use recovery codes.

* Enrolment: ``start_enrolment`` draws a secret (kept encrypted with Fernet,
  ``crypto.mfa_fernet``; the same pending secret is shown again until confirmed), the page
  shows it as a QR code (``qr_svg``, drawn here with segno: no external service) and as
  text; ``confirm_enrolment`` checks a first code and returns ``RECOVERY_CODES`` recovery
  codes in clear, to be shown once: only their SHA-256 is stored.
* ``verify(user, code)``: a TOTP code of the current 30 s step (or the one before or after,
  for clock drift), never one already used — the counter of the last accepted code is
  stored, so a code seen over a shoulder cannot be replayed; or an unused recovery code,
  which is then spent.
* ``reset`` forgets the second factor (lost phone): the account enrols again at its next
  login.

Times come from ``clock.now()``; services take plain data and the caller commits.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import pyotp
import segno
from flask import current_app
from sqlalchemy import delete, select

from backoffice import clock, crypto
from backoffice.extensions import db
from backoffice.models import MfaRecoveryCode, User
from backoffice.services import DomainError

RECOVERY_CODES = 10
VALID_WINDOW = 1  # steps accepted before and after the current one


class MfaError(DomainError):
    """A refused second-factor operation."""


def _secret(user: User) -> str | None:
    token = user.totp_secret_encrypted
    return crypto.mfa_fernet().decrypt(token.encode()).decode() if token else None


def start_enrolment(user: User) -> str:
    """The secret to show at enrolment (a new one, or the pending one again)."""
    if user.mfa_enabled:
        raise MfaError("La double authentification est déjà activée pour ce compte.")
    secret = _secret(user)
    if secret is None:
        secret = pyotp.random_base32()
        user.totp_secret_encrypted = crypto.mfa_fernet().encrypt(secret.encode()).decode()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email,
                                               issuer_name=current_app.config["MFA_ISSUER"])


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG (markup to insert as is)."""
    return segno.make(uri, error="m").svg_inline(scale=4, title="Code QR à scanner")


def _check_totp(user: User, code: str) -> bool:
    secret = _secret(user)
    if secret is None or not re.fullmatch(r"\d{6}", code):
        return False
    totp = pyotp.TOTP(secret)
    current = totp.timecode(clock.now())
    for counter in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if user.totp_last_counter is not None and counter <= user.totp_last_counter:
            continue  # already used (or older than the last code used): a replay
        if hmac.compare_digest(totp.generate_otp(counter), code):
            user.totp_last_counter = counter
            return True
    return False


def _normalise(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()


def _hash(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _use_recovery_code(user: User, code: str) -> bool:
    row = db.session.scalar(select(MfaRecoveryCode).where(
        MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.code_hash == _hash(code),
        MfaRecoveryCode.used_at.is_(None)))
    if row is None:
        return False
    row.used_at = clock.now()
    return True


def confirm_enrolment(user: User, code: str) -> list[str]:
    """The first code confirms the enrolment; returns the recovery codes in clear."""
    if user.mfa_enabled or user.totp_secret_encrypted is None:
        raise MfaError("Aucune activation de double authentification n'est en cours.")
    if not _check_totp(user, _normalise(code)):
        raise MfaError("Code incorrect : saisissez le code à 6 chiffres affiché par "
                       "l'application.", field="code")
    user.mfa_enabled_at = clock.now()
    return issue_recovery_codes(user)


def issue_recovery_codes(user: User) -> list[str]:
    """New recovery codes (the previous ones stop working), in clear, to show once."""
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)  # 40 bits each, single use
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(MfaRecoveryCode(user_id=user.id, code_hash=_hash(raw),
                                       created_at=clock.now()))
    db.session.flush()
    return codes


def verify(user: User, code: str) -> bool:
    """A valid, unused TOTP code or an unused recovery code (then spent)."""
    if not user.mfa_enabled:
        return False
    code = _normalise(code)
    if re.fullmatch(r"\d{6}", code):
        return _check_totp(user, code)
    return bool(code) and _use_recovery_code(user, code)


def remaining_recovery_codes(user: User) -> int:
    return len(list(db.session.scalars(select(MfaRecoveryCode.id).where(
        MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.used_at.is_(None)))))


def enrol_with_secret(user: User, secret: str) -> None:
    """Enrol ``user`` with a known secret, without a first code (demo accounts, tests)."""
    user.totp_secret_encrypted = crypto.mfa_fernet().encrypt(secret.encode()).decode()
    user.mfa_enabled_at = clock.now()
    user.totp_last_counter = None


def reset(user: User) -> None:
    """Forget the second factor: the account enrols again at its next login."""
    user.totp_secret_encrypted = None
    user.mfa_enabled_at = None
    user.totp_last_counter = None
    db.session.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))

"""The password policy and password hashing: one place for every password a user sets.

``check_password_policy(password, user_inputs=...)`` is the one check (registration,
reset, « Mon compte », the admin's User form, the forms engine's ``mot_de_passe_robuste``):
12 to 128 characters, and not guessable — neither a common or breached password nor a
variant of one ("Marseille2024!"), nor built on the user's own name or e-mail. It runs
offline: zxcvbn (PyPI) ships its dictionaries (English words, names, the most common leaked
passwords) and ``data/mots-de-passe-courants-fr.txt`` adds the French and domain words;
a password must reach zxcvbn's score ``MIN_SCORE`` (3: about 10^8 guesses) and its lower
case, with what people append at the end removed, must not be in the French list.

``hash_password`` / ``verify_password`` wrap Werkzeug's scrypt. ``verify_password`` with no
hash (unknown account, account without password) still checks against a dummy hash of the
same cost, so that a login takes the same time whether the account exists or not;
``hash_password`` is likewise called by registration even when the address is taken.
"""
from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash
from wtforms.validators import ValidationError
from zxcvbn import zxcvbn

MIN_LENGTH = 12
MAX_LENGTH = 128
MIN_SCORE = 3  # zxcvbn: 0 (too guessable) … 4 (very unguessable)
COMMON_WORDS_FILE = Path(__file__).parent / "data" / "mots-de-passe-courants-fr.txt"

TOO_SHORT = f"Le mot de passe compte {MIN_LENGTH} caractères au moins."
TOO_LONG = f"Le mot de passe compte {MAX_LENGTH} caractères au plus."
TOO_COMMON = ("Ce mot de passe est trop courant ou trop simple : choisissez-en un autre, "
              "par exemple une phrase de plusieurs mots.")


@functools.cache
def common_words() -> tuple[str, ...]:
    lines = COMMON_WORDS_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip().lower() for line in lines
                 if line.strip() and not line.startswith("#"))


def _personal_words(user_inputs: Iterable[str | None]) -> list[str]:
    """The user's name, e-mail and the parts of the e-mail ("claire.martin@ml.fr" gives
    "claire", "martin" and "ml" too)."""
    words = []
    for value in user_inputs:
        if value:
            value = str(value).lower()
            words.append(value)
            words.extend(part for part in re.split(r"[\W_]+", value) if len(part) >= 3)
    return words


def check_password_policy(password: str, *, user_inputs: Iterable[str | None] = ()
                          ) -> str | None:
    """The French reason why ``password`` may not be used (None when it may).
    ``user_inputs``: the account's e-mail, nom, prénom… which the password must not be
    built on."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    lowered = password.lower()
    core = re.sub(r"[\d\W_]+$", "", lowered)  # "azerty2024!" → "azerty"
    if not core or lowered in common_words() or core in common_words():
        return TOO_COMMON
    result = zxcvbn(password, user_inputs=[*common_words(), *_personal_words(user_inputs)],
                    max_length=MAX_LENGTH)
    if result["score"] < MIN_SCORE:
        return TOO_COMMON
    return None


class PasswordPolicy:
    """WTForms validator applying ``check_password_policy``; ``user_fields`` names the
    fields of the same form holding the user's e-mail, nom, prénom (when it has them)."""

    def __init__(self, user_fields: Iterable[str] = ("email", "nom", "prenom")):
        self.user_fields = tuple(user_fields)

    def __call__(self, form, field):
        inputs = [form[name].data for name in self.user_fields if name in form]
        message = check_password_policy(field.data or "", user_inputs=inputs)
        if message:
            raise ValidationError(message)


# -- hashing ----------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    return generate_password_hash(password)  # scrypt, Werkzeug's default


# Same method and cost as real hashes (Werkzeug's default); made once per process.
DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(24))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; with no hash, the same work is done
    against a dummy hash and the answer is False."""
    if not password_hash:
        check_password_hash(DUMMY_HASH, password or "")
        return False
    return check_password_hash(password_hash, password or "")

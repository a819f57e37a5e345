"""SIRET helpers (python-stdnum does the checking)."""
from __future__ import annotations

from stdnum import luhn
from stdnum.fr import siret as _siret


def is_valid(value: str | None) -> bool:
    return bool(value) and _siret.is_valid(value)


def make(siren_body: int, establishment: int = 1) -> str:
    """A Luhn-valid SIRET from an 8-digit SIREN body and an establishment number (demo, tests)."""
    siren = f"{siren_body % 10**8:08d}"
    siren += luhn.calc_check_digit(siren)
    body = f"{siren}{establishment % 10**4:04d}"
    return body + luhn.calc_check_digit(body)

"""Text helpers shared by models, rules and search."""
from __future__ import annotations

import re
import unicodedata

_NOT_LETTER = re.compile(r"[^a-z0-9]+")


def fold(text: str | None) -> str:
    """Lower case, no accents, no punctuation, single spaces: "Élodie  D'Arc" → "elodie d arc"."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.replace("œ", "oe").replace("Œ", "oe")
                                       .replace("æ", "ae").replace("Æ", "ae"))
    ascii_text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return _NOT_LETTER.sub(" ", ascii_text).strip()


def name_key(text: str | None) -> str:
    """Key for duplicate detection: accents, case, hyphens, spaces and apostrophes folded,
    so "Dupont-Léger", "DUPONT LEGER" and "dupontleger" give the same key."""
    return fold(text).replace(" ", "")

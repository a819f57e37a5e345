"""Rotation of the NIR encryption keys: re-encrypt every stored NIR with the newest key.

Procedure: put a new key in front of ``NIR_ENCRYPTION_KEYS`` (``B,A``), restart, run
``backoffice nir rotate``; when it reports nothing left under an old key, drop the old
keys (``B``). The command:

* walks the candidates by id in batches and commits per batch (a stop loses at most one
  batch, a rerun goes on);
* is idempotent: a NIR already under the newest key is left as it is, so a second run
  changes nothing;
* writes each value only if it did not change since it was read (a NIR typed in the
  meantime is never overwritten by the old one), without touching ``updated_at``;
* never stops on a value that no configured key can read: it counts and logs it
  (``NirDecryptionError``), and reports it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select, update

from backoffice import crypto
from backoffice.extensions import db
from backoffice.models import Candidate

log = logging.getLogger(__name__)


@dataclass
class RotationReport:
    seen: int = 0
    rotated: int = 0
    unreadable: int = 0
    unreadable_ids: list[int] | None = None

    def __str__(self) -> str:
        text = (f"{self.seen} NIR examinés, {self.rotated} rechiffrés avec la clé la plus "
                f"récente")
        if self.unreadable:
            shown = ", ".join(str(i) for i in (self.unreadable_ids or [])[:20])
            text += (f", {self.unreadable} illisibles avec les clés configurées "
                     f"(candidats {shown}{'…' if self.unreadable > 20 else ''})")
        return text + "."


def rotate_keys(*, batch_size: int = 500) -> RotationReport:
    """Re-encrypt every stored NIR with the newest key; commits per batch."""
    if batch_size < 1:
        raise ValueError("La taille de lot doit être un entier positif.")
    table = Candidate.__table__
    report = RotationReport(unreadable_ids=[])
    last_id = 0
    while True:
        rows = db.session.execute(
            select(table.c.id, table.c.nir_chiffre)
            .where(table.c.id > last_id, table.c.nir_chiffre.is_not(None))
            .order_by(table.c.id).limit(batch_size)).all()
        if not rows:
            break
        for candidate_id, token in rows:
            report.seen += 1
            if crypto.is_current(token):
                continue
            try:
                new_token = crypto.rotate(token)
            except crypto.NirDecryptionError:
                report.unreadable += 1
                report.unreadable_ids.append(candidate_id)
                log.error("Rotation des clés NIR : le NIR du candidat %s est illisible.",
                          candidate_id)
                continue
            result = db.session.execute(
                update(table).where(table.c.id == candidate_id,
                                    table.c.nir_chiffre == token)
                .values(nir_chiffre=new_token, updated_at=table.c.updated_at))
            report.rotated += result.rowcount
        db.session.commit()
        last_id = rows[-1][0]
    log.info("Rotation des clés NIR : %s", report)
    return report

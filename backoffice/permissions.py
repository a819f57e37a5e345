"""Who may read or edit a candidate's personal data: one named permission.

The candidates' directory is shared by every prescriber (guide: « rechercher si la
personne est déjà présente dans l'annuaire »), but a person's full file — contact data,
commune, the NIR field — belongs to the structures that work with them. In the manner of
les-emplois' ``can_edit_personal_information`` (itou/utils/perms/utils.py), the rule is
one function, used by every view that shows or edits that data:

* a structure that registered the person (``Candidate.created_by_structure_id``), or
* a prescribing structure with a candidature for them (any state, drafts included), or
* a training organisation (OF) that received a candidature for them on one of its
  sessions (the candidatures it can see: ``services.candidatures.of_scope``).

Anyone else gets a 404 on the file (its existence is not leaked) and only the identity
(nom, prénom, date de naissance) in a directory search by exact identity. An anonymised
candidate is nobody's any more.

``personal_information_scope(membership)`` is the same rule as a SQL condition on
``Candidate`` (for lists and searches); ``can_edit_personal_information`` asks it for one
candidate, so the two can never disagree.
"""
from __future__ import annotations

from sqlalchemy import exists, false, or_, select

from backoffice.extensions import db
from backoffice.models import Candidate, Candidature, Membership


def personal_information_scope(membership: Membership | None):
    """SQL condition: the candidates whose personal data ``membership``'s structure may
    read and edit."""
    from backoffice.services import candidatures as service  # services import this module

    if membership is None:
        return false()
    structure_id = membership.structure_id

    # A correlated EXISTS: the candidate's own candidatures, found by their index; not
    # ``id IN (all the candidatures of the structure)``, which PostgreSQL hashes whole
    # (57 ms for a structure with 37,000 candidatures, 0.05 ms this way).
    def has_candidature(condition):
        return exists().where(Candidature.candidate_id == Candidate.id, condition)

    conditions = [
        Candidate.created_by_structure_id == structure_id,
        has_candidature(Candidature.prescriber_structure_id == structure_id),
    ]
    if service.is_of_manager(membership):
        conditions.append(has_candidature(service.of_scope(membership)))
    return or_(*conditions) & Candidate.anonymised_at.is_(None)


def can_edit_personal_information(membership: Membership | None,
                                  candidate: Candidate | None) -> bool:
    """Whether ``membership``'s structure may read and edit ``candidate``'s full file."""
    if membership is None or candidate is None or candidate.id is None:
        return False
    return db.session.scalar(select(Candidate.id).where(
        Candidate.id == candidate.id, personal_information_scope(membership))) is not None


def with_personal_information(membership: Membership | None, candidate_ids) -> set[int]:
    """Those of ``candidate_ids`` whose full file ``membership`` may see (one query, for a
    list of search results)."""
    ids = list(candidate_ids)
    if membership is None or not ids:
        return set()
    return set(db.session.scalars(select(Candidate.id).where(
        Candidate.id.in_(ids), personal_information_scope(membership))))

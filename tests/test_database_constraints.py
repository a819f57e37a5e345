"""The database itself enforces the domain: unique SIRET and references, one profile per
family, CHECK constraints on state codes, mandatory fields, foreign keys."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from backoffice.models import Candidature, Formation, Membership, Session, Structure, User
from tests.factories import (create_candidature, create_formation, create_session,
                             create_structure, create_user)


def _refused(db, statement_or_callable):
    with pytest.raises(IntegrityError):
        if callable(statement_or_callable):
            statement_or_callable()
        else:
            db.session.execute(statement_or_callable)
        db.session.flush()
    db.session.rollback()


def test_duplicate_siret_is_refused_by_the_database(db):
    """Two structures with the same SIRET: the database refuses the second one."""
    structure = create_structure()
    db.session.commit()
    _refused(db, insert(Structure.__table__).values(
        raison_sociale="Copie", siret=structure.siret, siren=structure.siren,
        kind="organisme_formation", autorisee_autre_siren=False, active=True,
        created_at=structure.created_at, updated_at=structure.updated_at))
    assert db.session.query(Structure).count() == 1


@pytest.mark.parametrize("siret, siren", [("1234567890123", "123456789"),
                                          ("12345678901234", "999999999")])
def test_malformed_siret_or_siren_is_refused(db, siret, siren):
    _refused(db, lambda: db.session.add(Structure(raison_sociale="X", siret=siret, siren=siren,
                                                  kind="prescripteur")))


def test_unknown_state_code_is_refused(db):
    formation = create_formation()
    db.session.commit()
    _refused(db, Formation.__table__.update().where(Formation.id == formation.id)
             .values(state="publiee_peut_etre"))


def test_unknown_candidature_state_is_refused(db):
    candidature = create_candidature()
    db.session.commit()
    _refused(db, Candidature.__table__.update().where(Candidature.id == candidature.id)
             .values(state="acceptee"))


def test_duplicate_formation_and_session_references_are_refused(db):
    session = create_session()
    db.session.commit()
    _refused(db, lambda: create_formation(reference=session.formation.reference))
    _refused(db, lambda: create_session(reference=session.reference))


def test_session_ending_before_it_starts_is_refused(db):
    _refused(db, lambda: create_session(date_debut=dt.date(2027, 3, 1),
                                        date_fin=dt.date(2027, 2, 1)))


def test_one_profile_per_family_and_per_membership(db):
    """A membership holds one OF profile at most (one column per family), and a user is
    attached once to a given structure."""
    structure = create_structure()
    user = create_user()
    db.session.add(Membership(user=user, structure=structure,
                              profile_of="gestionnaire_of_general"))
    db.session.commit()
    _refused(db, lambda: db.session.add(Membership(user_id=user.id, structure_id=structure.id)))
    _refused(db, Membership.__table__.update().values(profile_of="prescripteur_n1"))
    _refused(db, Membership.__table__.update().values(beneficiaire=False))


def test_consent_is_mandatory_outside_drafts(db):
    candidature = create_candidature()
    db.session.commit()
    _refused(db, Candidature.__table__.update().where(Candidature.id == candidature.id)
             .values(consentement=False))
    db.session.execute(Candidature.__table__.update().where(Candidature.id == candidature.id)
                       .values(consentement=False, state="brouillon"))
    db.session.commit()


def test_mandatory_fields_and_foreign_keys(db):
    _refused(db, lambda: db.session.add(User(email="x@exemple.fr", nom=None, prenom="A")))
    _refused(db, insert(Session.__table__).values(
        reference="99999999", formation_id=424242, date_debut=dt.date(2027, 1, 1),
        date_fin=dt.date(2027, 2, 1), mode_entree="date_fixe", ouverte_candidature=True,
        state="active", version=1, created_at=dt.datetime(2026, 1, 1),
        updated_at=dt.datetime(2026, 1, 1)))


def test_email_is_stored_lower_case(db):
    _refused(db, lambda: create_user(email="Majuscule@Exemple.fr"))


def test_nir_is_stored_encrypted(db):
    from tests.factories import create_candidate

    candidate = create_candidate()
    candidate.nir = "295057512345678"
    db.session.commit()
    assert candidate.nir_chiffre and "295057512345678" not in candidate.nir_chiffre
    db.session.expire_all()
    assert db.session.get(type(candidate), candidate.id).nir == "295057512345678"

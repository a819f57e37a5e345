"""Small factory callables for the main entities: ``create_formation(**overrides)``.

Each returns a flushed object with sensible defaults; related objects are created when
not given. Nothing is committed: the test (or the code under test) decides.
"""
from __future__ import annotations

import datetime as dt
import itertools

from backoffice import clock, siret
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, Certification, Commune,
                               EntryPoint, Formation, FormationState, Membership, Session,
                               StaffRole, Structure, StructureKind, User, UserState)

PASSWORD = "Mot-de-passe-de-test-2026"
_counter = itertools.count(1)
_PASSWORD_HASHES: dict[str, str] = {}  # scrypt is slow on purpose: hash each password once


def _next() -> int:
    return next(_counter)


def _save(obj):
    db.session.add(obj)
    db.session.flush()
    return obj


def create_commune(**overrides) -> Commune:
    n = _next()
    values = dict(code_insee=f"33{n % 1000:03d}", code_postal=f"33{n % 1000:03d}",
                  nom=f"Commune {n}", departement="33")
    values.update(overrides)
    return _save(Commune(**values))


def create_structure(**overrides) -> Structure:
    n = _next()
    values = dict(raison_sociale=f"Structure {n}", siret=siret.make(10_000_000 + n),
                  kind=StructureKind.ORGANISME_FORMATION, departement="33")
    values.update(overrides)
    values.setdefault("siren", values["siret"][:9])
    return _save(Structure(**values))


def create_user(password: str = PASSWORD, **overrides) -> User:
    n = _next()
    values = dict(email=f"utilisateur{n}@exemple.fr", nom=f"Nom{n}", prenom="Prénom",
                  state=UserState.ACTIF)
    values.update(overrides)
    user = User(**values)
    if password not in _PASSWORD_HASHES:
        user.set_password(password)
        _PASSWORD_HASHES[password] = user.password_hash
    user.password_hash = _PASSWORD_HASHES[password]
    return _save(user)


def create_staff(role: str = StaffRole.MODERATEUR, **overrides) -> User:
    return create_user(staff_role=role, **overrides)


def create_member(structure: Structure | None = None, **membership) -> User:
    """A user attached to ``structure`` with the given profile columns."""
    user = create_user()
    _save(Membership(user=user, structure=structure or create_structure(), **membership))
    return user


def create_certification(**overrides) -> Certification:
    n = _next()
    values = dict(code_certifinfo=f"{90000 + n}", intitule=f"Titre professionnel {n}",
                  niveau="4", ouverte_apprentissage=True)
    values.update(overrides)
    return _save(Certification(**values))


def create_formation(**overrides) -> Formation:
    n = _next()
    structure = overrides.pop("structure", None) or create_structure()
    values = dict(reference=f"{202600000000 + n}", intitule=f"Formation {n}",
                  structure=structure, organisme_formateur=structure,
                  certification=overrides.pop("certification", None) or create_certification(),
                  dispositif="conventionne_region", state=FormationState.BROUILLON,
                  modalite_formation_continue=True, modalite_contrat_pro=False,
                  modalite_apprentissage=False, annees_cursus=[])
    values.update(overrides)
    return _save(Formation(**values))


def create_session(**overrides) -> Session:
    n = _next()
    today = clock.today()
    values = dict(reference=f"{10000000 + n}", date_debut=today + dt.timedelta(days=30),
                  date_fin=today + dt.timedelta(days=200), places=12)
    if "formation" not in overrides:
        values["formation"] = create_formation()
    values.update(overrides)
    return _save(Session(**values))


def create_entry_point(**overrides) -> EntryPoint:
    values = dict(date_entree=clock.today() + dt.timedelta(days=40), places=10)
    if "session" not in overrides:
        values["session"] = create_session()
    values.update(overrides)
    return _save(EntryPoint(**values))


def create_candidate(**overrides) -> Candidate:
    n = _next()
    values = dict(nom=f"Candidat{n}", prenom="Élodie", date_naissance=dt.date(1995, 5, 17))
    values.update(overrides)
    return _save(Candidate(**values))


def create_candidature(**overrides) -> Candidature:
    n = _next()
    values = dict(reference=f"{300000000000 + n}", state=CandidatureState.EN_ATTENTE_AVIS,
                  consentement=True, submitted_at=clock.now())
    if "candidate" not in overrides:
        values["candidate"] = create_candidate()
    if "session" not in overrides:
        values["session"] = create_session()
    if "prescriber_user" not in overrides:
        structure = overrides.get("prescriber_structure") or create_structure(
            kind=StructureKind.PRESCRIPTEUR, prescriber_type="france_travail")
        values["prescriber_structure"] = structure
        values["prescriber_user"] = create_member(structure, profile_prescripteur="prescripteur_n2")
    values.update(overrides)
    return _save(Candidature(**values))

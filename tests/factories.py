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
# Staff users are created enrolled in the second factor with this TOTP secret
# (``tests.conftest.login`` computes their code).
STAFF_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
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


def create_user(password: str = PASSWORD, mfa_enrolled: bool = True, **overrides) -> User:
    """A user; a staff one (``staff_role=``) is enrolled in the second factor with
    ``STAFF_TOTP_SECRET`` unless ``mfa_enrolled=False``."""
    from backoffice.services import mfa

    n = _next()
    values = dict(email=f"utilisateur{n}@exemple.fr", nom=f"Nom{n}", prenom="Prénom",
                  state=UserState.ACTIF)
    values.update(overrides)
    user = User(**values)
    if password not in _PASSWORD_HASHES:
        user.set_password(password)
        _PASSWORD_HASHES[password] = user.password_hash
    user.password_hash = _PASSWORD_HASHES[password]
    if user.staff_role and mfa_enrolled:
        mfa.enrol_with_secret(user, STAFF_TOTP_SECRET)
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


def create_publishable_formation(structure: Structure | None = None, **overrides) -> Formation:
    """A brouillon that passes every publication check: one future session with a place."""
    structure = structure or create_structure()
    values = dict(structure=structure, objectif="Devenir carreleur.",
                  programme="Pose de carrelage, chapes.", lien_web="https://www.exemple.fr/f",
                  state=FormationState.BROUILLON)
    values.update(overrides)
    formation = create_formation(**values)
    create_session(formation=formation, adresse="12 rue des Écoles", commune=create_commune())
    db.session.refresh(formation)
    return formation


# -- prescription and avis (issue 7) -------------------------------------------------------
def create_prescriber(profile: str = "prescripteur_n2", structure: Structure | None = None,
                      **user) -> User:
    """A prescriber user of ``structure`` (a new France Travail agency by default)."""
    structure = structure or create_structure(kind=StructureKind.PRESCRIPTEUR,
                                              prescriber_type="france_travail")
    member = create_user(**user)
    _save(Membership(user=member, structure=structure, profile_prescripteur=profile))
    return member


def create_of_manager(structure: Structure, profile: str = "gestionnaire_of_preinscription"
                      ) -> User:
    member = create_user()
    _save(Membership(user=member, structure=structure, profile_of=profile))
    return member


def create_published_session(formation: Formation | None = None, **overrides) -> Session:
    """A session of a validated formation, open to candidatures (searchable)."""
    if formation is None:
        formation = create_formation(state=FormationState.VALIDEE)
    values = dict(formation=formation, date_publication=clock.today(),
                  date_entree_tardive=clock.today() + dt.timedelta(days=60))
    values.update(overrides)
    return create_session(**values)


# -- accounts, habilitations and delegations (issue 8) -----------------------------------------
def create_referent(structure: Structure | None = None, **membership) -> User:
    """A user who is the référent of ``structure`` (a new OF by default)."""
    return create_member(structure or create_structure(), is_referent=True, **membership)


def create_habilitation(user: User | None = None, siret_value: str | None = None,
                        role: str = "declarant", state: str = "active"):
    from backoffice.models import Habilitation

    return _save(Habilitation(user=user or create_user(),
                              siret=siret_value or siret.make(20_000_000 + _next()),
                              role=role, state=state))


def create_delegation(granted_by: User, siret_etablissement: str, **overrides):
    from backoffice.models import Delegation

    values = dict(granted_by=granted_by, siret_etablissement=siret_etablissement,
                  siret_tiers=siret.make(30_000_000 + _next()),
                  email_tiers=f"tiers{_next()}@exemple.fr", role="declarant", state="active")
    values.update(overrides)
    return _save(Delegation(**values))


def create_referencing_request(requester: User | None = None, **overrides):
    from backoffice.models import ReferencingRequest

    n = _next()
    values = dict(requester=requester, raison_sociale=f"Nouvelle structure {n}",
                  siret=siret.make(40_000_000 + n), kind=StructureKind.PRESCRIPTEUR,
                  prescriber_type="mission_locale")
    values.update(overrides)
    return _save(ReferencingRequest(**values))


# -- admin edit forms and access matrix (issue 11) --------------------------------------------
def create_account_request(user: User | None = None, structure: Structure | None = None,
                           **overrides):
    from backoffice.models import AccountRequest

    return _save(AccountRequest(user=user or create_user(),
                                structure=structure or create_structure(), **overrides))


def create_affiliation_request(user: User | None = None, structure: Structure | None = None,
                               **overrides):
    from backoffice.models import AffiliationRequest

    return _save(AffiliationRequest(user=user or create_user(),
                                    structure=structure or create_structure(), **overrides))

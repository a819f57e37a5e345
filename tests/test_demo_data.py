"""Demo data (``backoffice demo-data``): generated at a small scale, then checked for what a
user of the demo would notice: accounts that log in, valid SIRETs, every state present,
consistent dates and determinism."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import func, select
from stdnum.fr import siret as stdnum_siret

from backoffice import clock, create_app, demo
from backoffice.config import TestingConfig
from backoffice.models import (Candidate, Candidature, CandidatureState, Commune, Formation,
                               FormationState, Membership, OfProfile, PrescriberProfile,
                               Session, Structure, StructureKind, User, UserState)
from backoffice.text import name_key
from tests.conftest import login

AT = clock.parse_instant("2026-11-23T10:30")  # a Monday morning, Paris time
SCALE = 0.02
SEED = 20261122


def generate(seed: int = SEED, scale: float = SCALE) -> tuple[str, list[str]]:
    lines: list[str] = []
    with clock.frozen(AT):
        report = demo.generate(scale=scale, seed=seed, echo=lines.append)
    return report, lines


def digest(db) -> str:
    """A fingerprint of the generated rows users see first."""
    h = hashlib.sha256()
    for model, columns in ((Formation, (Formation.reference, Formation.intitule,
                                        Formation.state, Formation.created_at)),
                           (Session, (Session.reference, Session.date_debut, Session.date_fin)),
                           (Candidate, (Candidate.nom, Candidate.prenom,
                                        Candidate.date_naissance)),
                           (Candidature, (Candidature.reference, Candidature.state,
                                          Candidature.submitted_at)),
                           (Structure, (Structure.siret, Structure.raison_sociale))):
        for row in db.session.execute(select(*columns).order_by(model.id).limit(200)):
            h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def test_report_and_progress_are_in_french(db):
    assert demo.database_is_empty()
    report, lines = generate()
    assert not demo.database_is_empty()
    assert report.startswith("Données de démonstration chargées en")
    for label in ("Communes", "Formations", "Sessions", "Candidats", "Candidatures",
                  "Journal des transitions"):
        assert label in report
    assert any("communes chargées" in line for line in lines)
    assert any("terminé en" in line for line in lines)
    # A second run on the same database is refused, with a French message.
    with pytest.raises(demo.DemoDataError, match="déjà des structures"):
        generate()


def test_reference_data_and_structures(db):
    generate()
    assert db.session.scalar(select(func.count()).select_from(Commune)) == 4505
    assert not db.session.scalar(select(func.count()).select_from(Commune).where(
        func.length(Commune.code_postal) != 5))
    structures = db.session.execute(select(Structure.siret, Structure.siren, Structure.kind,
                                           Structure.prescriber_type)).all()
    sirets = [s.siret for s in structures]
    assert len(sirets) == len(set(sirets))
    assert all(stdnum_siret.is_valid(s) for s in sirets)
    assert all(s.siren == s.siret[:9] for s in structures)
    assert {s.kind for s in structures} >= {StructureKind.ORGANISME_FORMATION,
                                            StructureKind.PRESCRIPTEUR}
    assert all(s.prescriber_type for s in structures if s.kind == StructureKind.PRESCRIPTEUR)
    # Several establishments of one organisation share a SIREN.
    assert len({s.siren for s in structures}) < len(structures)


def test_communes_already_present_are_kept(db):
    db.session.add(Commune(code_insee="33063", code_postal="33000", nom="Bordeaux",
                           departement="33"))
    db.session.commit()
    generate()
    assert db.session.scalar(select(func.count()).select_from(Commune)) == 4505
    assert db.session.scalar(select(func.count()).select_from(Commune).where(
        Commune.code_insee == "33063")) == 1


def test_offer_is_consistent(db):
    generate()
    formations = db.session.execute(select(Formation.modalite_apprentissage,
                                           Formation.annees_cursus, Formation.state,
                                           Formation.reference, Formation.intitule)).all()
    assert {f.state for f in formations} == set(FormationState)
    for f in formations:
        assert bool(f.annees_cursus) == bool(f.modalite_apprentissage), f
        assert set(f.annees_cursus) <= {1, 2, 3, 4, 5}
        assert len(f.reference) == 12 and f.reference.isdigit()
        assert len(f.intitule) <= 300
    sessions = db.session.execute(select(Session.date_debut, Session.date_fin,
                                         Session.reference)).all()
    assert sessions
    assert all(s.date_fin >= s.date_debut for s in sessions)
    assert len({s.reference for s in sessions}) == len(sessions)


def test_candidates_and_candidatures(db):
    generate()
    states = set(db.session.scalars(select(Candidature.state).distinct()))
    assert states == set(CandidatureState)
    candidates = db.session.execute(select(Candidate.nom, Candidate.prenom,
                                           Candidate.nom_normalise,
                                           Candidate.prenom_normalise,
                                           Candidate.date_naissance)).all()
    # French names: accents, hyphens, apostrophes and spaces ("Le Gall", "N'Diaye").
    assert any(ch in c.nom + c.prenom for c in candidates for ch in "éèêëïîôöüçÉ")
    assert any("-" in c.nom + c.prenom for c in candidates)
    assert all(c.nom_normalise == name_key(c.nom) and c.prenom_normalise == name_key(c.prenom)
               for c in candidates)
    today = AT.astimezone(clock.PARIS).date()
    for c in candidates:
        age = (today - c.date_naissance).days / 365.25
        assert 16 <= age <= 66, c
    # Dates follow the states; nothing happens after the reference instant.
    for c in db.session.scalars(select(Candidature)):
        draft = c.state in (CandidatureState.BROUILLON, CandidatureState.CORBEILLE)
        assert (c.submitted_at is None) == draft, c.state
        assert c.consentement or draft
        assert (c.avis_at is not None) == (c.state in (
            CandidatureState.RETENUE, CandidatureState.NON_RETENUE,
            CandidatureState.REFUS_SESSION_COMPLETE, CandidatureState.REFUS_SESSION_ANNULEE))
        assert c.created_at <= c.updated_at <= AT
        assert c.annee_cursus is None or 1 <= c.annee_cursus <= 5


def test_demo_accounts_exist_and_log_in(app, db):
    generate()
    users = {u.email: u for u in db.session.scalars(
        select(User).where(User.email.in_(demo.DEMO_EMAILS)))}
    assert set(users) == set(demo.DEMO_EMAILS)
    assert all(u.state == UserState.ACTIF for u in users.values())
    assert {users[e].staff_role for e in ("admin@demo.fr", "moderateur@demo.fr",
                                          "regles@demo.fr")} == {
        "admin", "moderateur", "responsable_regles"}

    def membership(email):
        return db.session.scalar(select(Membership).where(
            Membership.user_id == users[email].id))

    of, referent = membership("of@demo.fr"), membership("referent@demo.fr")
    assert of.profile_of == OfProfile.GENERAL and of.profile_prescripteur is None
    assert referent.is_referent and referent.structure_id == of.structure_id
    assert db.session.scalar(select(func.count()).select_from(Formation).where(
        Formation.structure_id == of.structure_id)) > 0
    levels = {email: membership(email) for email in
              ("prescripteur1@demo.fr", "prescripteur2@demo.fr", "prescripteur3@demo.fr")}
    assert [m.profile_prescripteur for m in levels.values()] == [
        PrescriberProfile.N1, PrescriberProfile.N2, PrescriberProfile.N3]
    assert len({m.structure_id for m in levels.values()}) == 1
    structure_id = levels["prescripteur1@demo.fr"].structure_id
    assert db.session.get(Structure, structure_id).prescriber_type == "france_travail"
    assert db.session.scalar(select(func.count()).select_from(Candidature).where(
        Candidature.prescriber_structure_id == structure_id)) > 0

    for email in demo.DEMO_EMAILS:
        # Requests reuse the current app context: one per account, so that ``g`` (CSRF
        # token, logged-in user) does not leak from one client to the next.
        with app.app_context():
            client = app.test_client()
            response = login(client, email, demo.DEMO_PASSWORD)
            assert response.status_code == 302, email
            assert "/connexion" not in response.headers["Location"], email
            assert client.get("/").status_code == 200, email
            if email in ("admin@demo.fr", "moderateur@demo.fr"):
                assert client.get("/admin/candidature/").status_code == 200


def test_accounts_table_lists_the_eight_roles(db):
    assert "Aucun compte de démonstration" in demo.accounts_table()
    generate()
    table = demo.accounts_table()
    for email in demo.DEMO_EMAILS:
        assert email in table
    for role in ("Administrateur de la plateforme", "Modérateur Cap Métiers",
                 "Responsable des règles", "Gestionnaire OF général",
                 "Prescripteur niveau 1", "Prescripteur niveau 2", "Prescripteur niveau 3",
                 "Référent de structure"):
        assert role in table
    assert table.count(demo.DEMO_PASSWORD) == 8
    assert demo.DEMO_TOTP_SECRET in table  # the staff accounts' second factor
    assert "France Travail" in table


def test_same_seed_same_data(db):
    generate(seed=SEED)
    first = digest(db)
    formations = db.session.execute(select(Formation.reference, Formation.intitule)
                                    .order_by(Formation.id)).all()

    # The same seed, at the same instant, in another (empty, in-memory) database.
    other = create_app(type("Config", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": "sqlite://"}))
    with other.app_context():
        db.create_all()
        try:
            generate(seed=SEED)
            assert digest(db) == first
            assert db.session.execute(select(Formation.reference, Formation.intitule)
                                      .order_by(Formation.id)).all() == formations
        finally:
            db.session.remove()
            db.engine.dispose()
    # Another seed gives other data.
    another = create_app(type("Config", (TestingConfig,),
                              {"SQLALCHEMY_DATABASE_URI": "sqlite://"}))
    with another.app_context():
        db.create_all()
        try:
            generate(seed=SEED + 1)
            assert digest(db) != first
        finally:
            db.session.remove()
            db.engine.dispose()


def test_scale_changes_volumes(db):
    report, _lines = generate(scale=0.01)
    small = db.session.scalar(select(func.count()).select_from(Candidature))
    assert small > 0
    assert "(échelle 0,01, graine" in report


def test_nir_is_encrypted_for_some_candidates(db):
    generate(scale=0.05)
    candidates = list(db.session.scalars(select(Candidate).where(
        Candidate.nir_chiffre.is_not(None)).limit(20)))
    assert candidates
    from stdnum.fr import nir
    for candidate in candidates:
        assert candidate.nir_chiffre != candidate.nir
        assert nir.is_valid(candidate.nir)
        assert candidate.nir[0] == ("1" if candidate.civilite == "M" else "2")
        born = candidate.date_naissance
        assert candidate.nir[1:5] == f"{born.year % 100:02d}{born.month:02d}"


def test_reference_instant_comes_from_the_clock(db):
    generate()
    latest = db.session.scalar(select(func.max(Candidature.updated_at)))
    assert latest <= AT
    assert latest >= AT - dt.timedelta(days=7)


def test_search_indexes_are_whole_after_the_load_and_kept_in_step_after_it(db):
    """The load drops the search and word indexes and builds them again at the end: every
    searchable session and every candidate is in them, and their triggers work again."""
    from backoffice import search
    from backoffice.admin import text_index

    generate()
    searchable = db.session.scalar(
        select(func.count()).select_from(Session).join(Formation).where(
            Session.state == "active", Formation.state.in_(search.SEARCHABLE_FORMATION_STATES)))
    assert searchable > 0
    assert db.session.scalar(select(func.count()).select_from(search.SESSIONS)) == searchable
    candidate = db.session.scalars(select(Candidate).order_by(Candidate.id)).first()
    assert candidate.id in set(db.session.scalars(select(Candidate.id).where(
        Candidate.id.in_(text_index.rows_matching(Candidate, candidate.nom)))))
    formation = db.session.scalars(select(Formation).where(
        Formation.state == FormationState.VALIDEE).order_by(Formation.id)).first()
    word = name_key(formation.intitule.split()[0]).lower()
    with clock.frozen(AT):
        found = search.search_sessions(search.Criteria(q=word, include_ended=True),
                                       per_page=10_000)
    assert formation.id in {row.session.formation_id for row in found.rows}
    candidate.nom = "Zyxwvut"  # the triggers are back: a change is found at once
    db.session.commit()
    assert set(db.session.scalars(select(Candidate.id).where(
        Candidate.id.in_(text_index.rows_matching(Candidate, "zyxwvut"))))) == {candidate.id}

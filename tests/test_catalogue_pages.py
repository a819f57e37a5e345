"""« Mon catalogue »: an OF user enters, edits and publishes formations and sessions."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from markupsafe import escape
from sqlalchemy import select

from backoffice import clock, rules_engine
from backoffice.models import (Formation, FormationState, OfProfile, OutboundMessage, Session,
                               StaffRole)
from backoffice.services import catalogue as service
from tests.conftest import csrf_token, login
from tests.factories import (create_candidature, create_certification, create_commune,
                             create_formation, create_member, create_publishable_formation,
                             create_session, create_staff, create_structure)

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def structure(db):
    return create_structure(raison_sociale="Centre de formation Garonne")


@pytest.fixture
def of_user(db, structure):
    user = create_member(structure, profile_of=OfProfile.CATALOGUE)
    db.session.commit()
    return user


@pytest.fixture
def logged(client, of_user):
    login(client, of_user)
    return client


def test_anonymous_is_sent_to_login(client):
    response = client.get("/catalogue/")
    assert response.status_code == 302
    assert "/connexion" in response.headers["Location"]


def test_member_without_catalogue_profile_is_refused(client, db, structure):
    user = create_member(structure, profile_of=OfProfile.PREINSCRIPTION)
    db.session.commit()
    login(client, user)
    assert client.get("/catalogue/").status_code == 403


def test_tabs_list_formations_with_dates_and_session_count(logged, db, structure):
    formation = create_formation(structure=structure, state=FormationState.VALIDEE,
                                 intitule="Titre Professionnel Carreleur-chapiste")
    create_session(formation=formation, date_debut=dt.date(2026, 3, 28),
                   date_fin=dt.date(2026, 10, 21))
    create_session(formation=formation, date_debut=dt.date(2026, 6, 27),
                   date_fin=dt.date(2027, 1, 13))
    create_formation(structure=structure, intitule="Brouillon caché")
    create_formation(intitule="Formation d'un autre organisme", state=FormationState.VALIDEE)
    db.session.commit()

    page = logged.get("/catalogue/?onglet=publiees").text
    assert "Titre Professionnel Carreleur-chapiste" in page
    assert "du 28/03/2026 au 13/01/2027" in page
    assert "Brouillon caché" not in page
    assert "autre organisme" not in page
    assert logged.get("/catalogue/?onglet=brouillons").text.count("Brouillon caché") == 1
    filtered = logged.get("/catalogue/?onglet=publiees&q=introuvable").text
    assert "Aucune donnée disponible" in filtered


def test_list_paginates_25_per_page(logged, db, structure):
    for n in range(30):
        create_formation(structure=structure, intitule=f"Formation numéro {n:02d}")
    db.session.commit()
    first = logged.get("/catalogue/?onglet=brouillons").text
    second = logged.get("/catalogue/?onglet=brouillons&page=2").text
    assert "1-25 / 30" in first
    assert "26-30 / 30" in second


def _formation_data(page_html: str, **overrides) -> dict:
    data = {"csrf_token": csrf_token(page_html), "intitule": "CAP Boulanger",
            "objectif": "Devenir boulanger.", "programme": "Pétrissage, cuisson.",
            "lien_web": "https://www.exemple.fr/cap", "financement": "Région",
            "dispositif": "conventionne_region", "modalite_formation_continue": "oui",
            "modalite_contrat_pro": "non", "modalite_apprentissage": "non",
            "action": "enregistrer"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_create_formation_keeps_a_brouillon_with_a_new_reference(logged, db, structure):
    certification = create_certification()
    db.session.commit()
    page = logged.get("/catalogue/formations/nouvelle")
    assert "0 / 300" in page.text
    assert 'data-source="certifications"' in page.text
    response = logged.post("/catalogue/formations/nouvelle", data=_formation_data(
        page.text, certification_id=str(certification.id),
        organisme_formateur_id=str(structure.id)))
    assert response.status_code == 302
    formation = db.session.scalar(select(Formation))
    assert formation.state == FormationState.BROUILLON
    assert re.fullmatch(r"2026\d{8}", formation.reference)
    assert formation.structure_id == structure.id
    assert formation.certification_id == certification.id


def test_bad_input_shows_french_messages_on_fields_and_summary(logged, db):
    page = logged.get("/catalogue/formations/nouvelle")
    response = logged.post("/catalogue/formations/nouvelle", data=_formation_data(
        page.text, intitule="", lien_web="www.exemple.fr", modalite_apprentissage=None,
        certification_id="999999"))
    assert response.status_code == 200
    text = response.text
    assert "Le formulaire contient" in text
    assert "Ce champ est obligatoire." in text
    assert "L&#39;adresse doit commencer par http:// ou https://." in text
    assert "Répondez par Oui ou par Non." in text
    assert "introuvable dans le référentiel Certif Info" in text
    assert db.session.scalar(select(Formation)) is None


def test_another_of_formation_is_not_found(logged, db):
    other = create_formation(state=FormationState.BROUILLON)
    other_session = create_session(formation=other)
    db.session.commit()
    assert logged.get(f"/catalogue/formations/{other.id}").status_code == 404
    assert logged.get(f"/catalogue/formations/{other.id}/publier").status_code == 404
    assert logged.get(f"/catalogue/sessions/{other_session.id}").status_code == 404
    page = logged.get("/catalogue/")
    response = logged.post(f"/catalogue/sessions/{other_session.id}/dupliquer",
                           data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 404


def test_every_publication_failure_is_listed_with_its_message(logged, db, structure):
    """A bad formation: every blocking rule's message appears at the top and on its field."""
    formation = create_formation(
        structure=structure, objectif=None, programme=None, lien_web="ftp://exemple.fr",
        modalite_formation_continue=None, modalite_contrat_pro=None,
        modalite_apprentissage=True, annees_cursus=[],
        certification=create_certification(ouverte_apprentissage=False))
    create_session(formation=formation, date_debut=dt.date(2026, 1, 5),
                   date_fin=dt.date(2026, 6, 30), adresse=None)
    db.session.commit()
    expected = [v for v in rules_engine.check("publication", formation, at=NOW) if v.blocking]
    rule_ids = {v.rule_id for v in expected}
    assert {"objectif_obligatoire", "programme_obligatoire",
            "modalite_formation_continue_obligatoire", "annees_cursus_manquantes",
            "certification_non_ouverte_apprentissage", "session_commence_dans_le_passe",
            "session_adresse_manquante", "session_commune_manquante"} <= rule_ids

    page = logged.get(f"/catalogue/formations/{formation.id}/publier")
    assert page.status_code == 200
    assert "ne peut pas encore être publiée" in page.text
    assert "Confirmer la publication" not in page.text
    for violation in expected:
        assert str(escape(violation.message)) in page.text, violation.rule_id
    # on their fields too: the objectif field carries its message as a field error
    assert re.search(r'invalid-feedback d-block" id="erreur-objectif">L&#39;objectif de la '
                     r'formation est obligatoire\.', page.text)
    db.session.refresh(formation)
    assert formation.state == FormationState.BROUILLON


def test_no_session_blocks_publication(logged, db, structure):
    formation = create_formation(structure=structure, objectif="x", programme="y")
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}/publier").text
    assert "Ajoutez au moins une session (dates et lieu de formation)." in page


def test_review_then_confirm_sends_to_moderation(logged, db, structure):
    formation = create_publishable_formation(structure)
    create_staff(StaffRole.MODERATEUR, email="moderatrice@cap-metiers.pro")
    db.session.commit()
    review = logged.get(f"/catalogue/formations/{formation.id}/publier")
    assert "Relisez votre saisie" in review.text
    assert "Modifier l'action" in review.text
    assert "Confirmer la publication" in review.text
    assert formation.intitule in review.text
    response = logged.post(f"/catalogue/formations/{formation.id}/confirmer",
                           data={"csrf_token": csrf_token(review.text)})
    assert response.status_code == 302
    db.session.expire_all()
    formation = db.session.get(Formation, formation.id)
    assert formation.state == FormationState.EN_ATTENTE_MODERATION
    assert formation.submitted_at == NOW
    assert db.session.scalar(select(OutboundMessage.recipient)) == "moderatrice@cap-metiers.pro"
    assert formation.intitule in logged.get("/catalogue/?onglet=creees").text


def test_publish_button_saves_then_opens_the_checks(logged, db, structure):
    formation = create_publishable_formation(structure)
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}")
    data = _formation_data(page.text, action="publier", version=str(formation.version),
                           certification_id=str(formation.certification_id),
                           organisme_formateur_id=str(structure.id))
    response = logged.post(f"/catalogue/formations/{formation.id}", data=data)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/catalogue/formations/{formation.id}/publier")


def test_editing_a_validated_formation_keeps_the_validated_version(logged, db, structure):
    formation = create_publishable_formation(structure, state=FormationState.VALIDEE,
                                             intitule="Version validée")
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}")
    data = _formation_data(page.text, intitule="Version modifiée", version=str(formation.version),
                           certification_id=str(formation.certification_id),
                           organisme_formateur_id=str(structure.id))
    assert logged.post(f"/catalogue/formations/{formation.id}", data=data).status_code == 302
    db.session.expire_all()
    formation = db.session.get(Formation, formation.id)
    assert formation.state == FormationState.VALIDEE
    assert formation.intitule == "Version modifiée"
    assert formation.validated_snapshot["intitule"] == "Version validée"
    assert "Version modifiée" in logged.get("/catalogue/?onglet=modifiees").text

    review = logged.get(f"/catalogue/formations/{formation.id}/publier")
    logged.post(f"/catalogue/formations/{formation.id}/confirmer",
                data={"csrf_token": csrf_token(review.text)})
    db.session.expire_all()
    formation = db.session.get(Formation, formation.id)
    assert formation.state == FormationState.MODIFIEE
    assert formation.validated_snapshot["intitule"] == "Version validée"


def test_stale_version_is_refused(logged, db, structure):
    formation = create_publishable_formation(structure)
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}")
    data = _formation_data(page.text, version=str(formation.version - 1),
                           certification_id=str(formation.certification_id),
                           organisme_formateur_id=str(structure.id))
    response = logged.post(f"/catalogue/formations/{formation.id}", data=data)
    assert "modifiée par quelqu&#39;un d&#39;autre" in response.text


# -- sessions --------------------------------------------------------------------------------
def _session_data(page_html: str, **overrides) -> dict:
    data = {"csrf_token": csrf_token(page_html), "date_debut": "01/09/2026",
            "date_fin": "31/07/2028", "mode_entree": "date_fixe", "adresse": "3 rue du Port",
            "places": "14", "ouverte_candidature": "y"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_add_and_edit_a_session(logged, db, structure):
    formation = create_formation(structure=structure)
    commune = create_commune(nom="Limoges", code_postal="87000")
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}/sessions/nouvelle")
    response = logged.post(f"/catalogue/formations/{formation.id}/sessions/nouvelle",
                           data=_session_data(page.text, commune_id=str(commune.id)))
    assert response.status_code == 302
    session = db.session.scalar(select(Session))
    assert re.fullmatch(r"\d{8}", session.reference)
    assert session.date_debut == dt.date(2026, 9, 1)
    listing = logged.get(f"/catalogue/formations/{formation.id}").text
    assert session.reference in listing and "Limoges" in listing

    page = logged.get(f"/catalogue/sessions/{session.id}")
    response = logged.post(f"/catalogue/sessions/{session.id}",
                           data=_session_data(page.text, date_fin="30/06/2028", places="20"))
    assert response.status_code == 302
    db.session.expire_all()
    session = db.session.get(Session, session.id)
    assert session.date_fin == dt.date(2028, 6, 30) and session.places == 20


def test_duplicate_a_session_gives_a_copy_with_a_new_reference(logged, db, structure):
    formation = create_formation(structure=structure)
    original = create_session(formation=formation, reference="00254068", adresse="Quai",
                              date_debut=dt.date(2026, 1, 5), date_fin=dt.date(2026, 6, 30),
                              created_at=NOW - dt.timedelta(days=90))
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}")
    response = logged.post(f"/catalogue/sessions/{original.id}/dupliquer",
                           data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    copy = db.session.scalar(select(Session).where(Session.id != original.id))
    assert copy.reference == "00254069"
    assert (copy.adresse, copy.date_debut) == ("Quai", dt.date(2026, 1, 5))
    assert response.headers["Location"].endswith(f"/catalogue/sessions/{copy.id}")
    # the copy's dates can then be changed (the original's cannot: it started)
    page = logged.get(f"/catalogue/sessions/{copy.id}")
    response = logged.post(f"/catalogue/sessions/{copy.id}", data=_session_data(
        page.text, date_debut="01/09/2026", date_fin="28/02/2027"))
    assert response.status_code == 302


@pytest.mark.parametrize("reason", ["started", "candidatures"])
def test_changing_dates_of_a_started_session_is_refused(logged, db, structure, reason):
    formation = create_formation(structure=structure)
    if reason == "started":
        session = create_session(formation=formation, date_debut=dt.date(2026, 3, 1),
                                 date_fin=dt.date(2026, 12, 1),
                                 created_at=NOW - dt.timedelta(days=30))
    else:
        session = create_session(formation=formation, date_debut=dt.date(2026, 9, 1),
                                 date_fin=dt.date(2027, 6, 1))
        create_candidature(session=session)
    db.session.commit()
    before = (session.date_debut, session.date_fin)
    page = logged.get(f"/catalogue/sessions/{session.id}")
    assert "ses dates ne peuvent plus être modifiées" in page.text
    response = logged.post(f"/catalogue/sessions/{session.id}", data=_session_data(
        page.text, date_debut="01/10/2026", date_fin="01/06/2027"))
    assert response.status_code == 200
    assert str(escape(service.DATES_LOCKED_MESSAGE)) in response.text
    db.session.expire_all()
    session = db.session.get(Session, session.id)
    assert (session.date_debut, session.date_fin) == before
    # other fields (e.g. the late-entry date) can still change
    page = logged.get(f"/catalogue/sessions/{session.id}")
    response = logged.post(f"/catalogue/sessions/{session.id}", data=_session_data(
        page.text, date_debut=before[0].strftime("%d/%m/%Y"),
        date_fin=before[1].strftime("%d/%m/%Y"), date_entree_tardive="15/10/2026"))
    assert response.status_code == 302


def test_probable_duplicate_is_shown_before_creating_then_can_be_confirmed(logged, db, structure):
    certification = create_certification()
    existing = create_formation(structure=structure, certification=certification,
                                state=FormationState.VALIDEE, intitule="CAP Boulanger (ancienne)")
    create_session(formation=existing, reference="00000042", date_debut=dt.date(2026, 9, 1),
                   date_fin=dt.date(2027, 6, 30))
    mine = create_formation(structure=structure, certification=certification)
    db.session.commit()
    url = f"/catalogue/formations/{mine.id}/sessions/nouvelle"
    page = logged.get(url)
    response = logged.post(url, data=_session_data(page.text, date_debut="01/10/2026",
                                                   date_fin="30/09/2027"))
    assert response.status_code == 200
    assert "Doublon probable" in response.text
    assert existing.reference in response.text and "00000042" in response.text
    assert db.session.scalar(select(Session).where(Session.formation_id == mine.id)) is None

    response = logged.post(url, data=_session_data(response.text, date_debut="01/10/2026",
                                                   date_fin="30/09/2027",
                                                   confirmer_doublon="1"))
    assert response.status_code == 302
    assert db.session.scalar(select(Session).where(Session.formation_id == mine.id))


def test_search_endpoints(logged, db, structure):
    create_certification(code_certifinfo="54321", intitule="CAP Boulanger")
    create_commune(nom="Limoges", code_postal="87100")
    sister = create_structure(raison_sociale="Antenne Garonne",
                              siret=structure.siren + "00099")
    create_structure(raison_sociale="Autre SIREN")
    db.session.commit()
    found = logged.get("/catalogue/api/certifications?q=boulang").json["resultats"]
    assert [r["libelle"] for r in found] == ["54321 — CAP Boulanger"]
    assert logged.get("/catalogue/api/certifications?q=5432").json["resultats"]
    assert logged.get("/catalogue/api/communes?q=871").json["resultats"][0]["libelle"] == \
        "Limoges (87100)"
    assert logged.get("/catalogue/api/communes?q=limo").json["resultats"]
    names = {r["id"] for r in logged.get("/catalogue/api/organismes-formateurs").json["resultats"]}
    assert names == {structure.id, sister.id}


def test_alert_tab_lists_formations_needing_action(logged, db, structure):
    create_formation(structure=structure, state=FormationState.COMPLEMENT_DEMANDE,
                     intitule="À compléter", moderation_comment="Précisez le programme.")
    ended = create_formation(structure=structure, state=FormationState.VALIDEE,
                             intitule="Sessions terminées")
    create_session(formation=ended, date_debut=dt.date(2025, 1, 1),
                   date_fin=dt.date(2025, 12, 1))
    create_formation(structure=structure, state=FormationState.VALIDEE, intitule="Certif close",
                     certification=create_certification(active=False))
    create_formation(structure=structure, state=FormationState.VALIDEE, intitule="Tout va bien")
    db.session.commit()
    page = logged.get("/catalogue/?onglet=alerte").text
    assert "Précisez le programme." in page
    assert "Toutes les sessions sont terminées" in page
    assert "n'est plus active" in page
    assert "Tout va bien" not in page


def _queries(db, client, url) -> int:
    from sqlalchemy import event
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return len(statements)


def test_catalogue_list_issues_no_query_per_row(logged, db, structure):
    def add(n):
        for _ in range(n):
            formation = create_formation(structure=structure, state=FormationState.VALIDEE)
            create_session(formation=formation)
        db.session.commit()

    add(2)
    few = _queries(db, logged, "/catalogue/?onglet=publiees")
    add(10)
    assert _queries(db, logged, "/catalogue/?onglet=publiees") == few


def test_hsp_session_entry_points(logged, db, structure):
    formation = create_formation(structure=structure, dispositif="HSP")
    session = create_session(formation=formation, date_debut=dt.date(2026, 9, 1),
                             date_fin=dt.date(2027, 6, 30))
    db.session.commit()
    page = logged.get(f"/catalogue/sessions/{session.id}")
    assert "Points d&#39;entrée (HSP)" in page.text or "Points d'entrée (HSP)" in page.text
    url = f"/catalogue/sessions/{session.id}/points-entree"
    token = csrf_token(page.text)
    response = logged.post(url, data={"csrf_token": token, "date_entree": "15/10/2026",
                                      "places": "14"}, follow_redirects=True)
    assert "Point d&#39;entrée ajouté." in response.text
    response = logged.post(url, data={"csrf_token": token, "date_entree": "15/10/2030",
                                      "places": "14"}, follow_redirects=True)
    assert "comprise dans la période de la session" in response.text
    db.session.expire_all()
    assert [p.date_entree for p in db.session.get(Session, session.id).entry_points] == [
        dt.date(2026, 10, 15)]

"""« Mon catalogue » maintenance: archive, delete and restore a formation; cancel or delete
a session; edit and delete the entry points of an HSP session. Every state change goes
through the workflow (a TransitionLog row), refusals are flashed in French."""
from __future__ import annotations

import datetime as dt

import pytest
from markupsafe import escape
from sqlalchemy import select

from backoffice import clock
from backoffice.models import (EntryPoint, Formation, FormationState, OfProfile, Session,
                               SessionState, TransitionLog)
from tests.conftest import csrf_token, login
from tests.factories import (create_candidature, create_entry_point, create_formation,
                             create_member, create_session, create_structure)

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def structure(db):
    return create_structure(raison_sociale="Centre de formation Garonne")


@pytest.fixture
def logged(client, db, structure):
    user = create_member(structure, profile_of=OfProfile.CATALOGUE)
    db.session.commit()
    login(client, user)
    return client


def _token(client, url: str = "/catalogue/") -> str:
    return csrf_token(client.get(url).text)


def _post(client, url: str, page: str = "/catalogue/", **data):
    return client.post(url, data={"csrf_token": _token(client, page), **data},
                       follow_redirects=True)


def _reload(db, model, obj_id):
    db.session.expire_all()
    return db.session.get(model, obj_id)


def _logs(db, object_type: str, object_id: int) -> list[str]:
    return list(db.session.scalars(select(TransitionLog.transition).where(
        TransitionLog.object_type == object_type, TransitionLog.object_id == object_id)
        .order_by(TransitionLog.id)))


# -- formations ------------------------------------------------------------------------------
def test_archive_then_restore_from_the_archived_tab(logged, db, structure):
    formation = create_formation(structure=structure, state=FormationState.VALIDEE,
                                 intitule="Carreleur à archiver",
                                 validated_snapshot={"intitule": "Carreleur à archiver"})
    db.session.commit()
    page = logged.get(f"/catalogue/formations/{formation.id}").text
    assert "Archiver" in page

    response = _post(logged, f"/catalogue/formations/{formation.id}/archiver")
    assert "archivée" in response.text
    assert _reload(db, Formation, formation.id).state == FormationState.ARCHIVEE
    tab = logged.get("/catalogue/?onglet=archivees").text
    assert "Carreleur à archiver" in tab and "Restaurer" in tab

    response = _post(logged, f"/catalogue/formations/{formation.id}/restaurer",
                     page="/catalogue/?onglet=archivees")
    assert "restaurée en brouillon" in response.text
    formation = _reload(db, Formation, formation.id)
    assert formation.state == FormationState.BROUILLON
    assert formation.validated_snapshot is None
    assert _logs(db, "formation", formation.id) == ["archiver", "restaurer"]


def test_archiving_a_draft_is_refused_in_french(logged, db, structure):
    formation = create_formation(structure=structure)
    db.session.commit()
    response = _post(logged, f"/catalogue/formations/{formation.id}/archiver")
    assert "Action refusée" in response.text
    assert str(escape("n'est pas possible")) in response.text
    assert _reload(db, Formation, formation.id).state == FormationState.BROUILLON
    assert _logs(db, "formation", formation.id) == []


def test_delete_asks_for_a_confirmation_then_restore(logged, db, structure):
    formation = create_formation(structure=structure, intitule="Brouillon à supprimer")
    db.session.commit()
    confirmation = logged.get(f"/catalogue/formations/{formation.id}/supprimer")
    assert confirmation.status_code == 200
    assert "Confirmez-vous la suppression" in confirmation.text
    assert _reload(db, Formation, formation.id).state == FormationState.BROUILLON

    response = logged.post(f"/catalogue/formations/{formation.id}/supprimer",
                           data={"csrf_token": csrf_token(confirmation.text),
                                 "confirmation": "oui"}, follow_redirects=True)
    assert "supprimée" in response.text
    assert _reload(db, Formation, formation.id).state == FormationState.SUPPRIMEE
    assert "Brouillon à supprimer" in logged.get("/catalogue/?onglet=supprimees").text

    _post(logged, f"/catalogue/formations/{formation.id}/restaurer",
          page="/catalogue/?onglet=supprimees")
    assert _reload(db, Formation, formation.id).state == FormationState.BROUILLON
    assert _logs(db, "formation", formation.id) == ["supprimer", "restaurer"]


def test_maintenance_posts_need_csrf_and_own_formation(logged, db, structure):
    formation = create_formation(structure=structure, state=FormationState.VALIDEE)
    other = create_formation(state=FormationState.VALIDEE)
    db.session.commit()
    assert logged.post(f"/catalogue/formations/{formation.id}/archiver").status_code == 400
    assert logged.post(f"/catalogue/formations/{formation.id}/supprimer").status_code == 400
    token = _token(logged)
    for action in ("archiver", "supprimer", "restaurer"):
        response = logged.post(f"/catalogue/formations/{other.id}/{action}",
                               data={"csrf_token": token})
        assert response.status_code == 404
    assert logged.get(f"/catalogue/formations/{other.id}/supprimer").status_code == 404
    assert _reload(db, Formation, other.id).state == FormationState.VALIDEE


def test_restoring_a_live_formation_is_refused(logged, db, structure):
    formation = create_formation(structure=structure, state=FormationState.VALIDEE)
    db.session.commit()
    response = _post(logged, f"/catalogue/formations/{formation.id}/restaurer")
    assert "Action refusée" in response.text
    assert _reload(db, Formation, formation.id).state == FormationState.VALIDEE


# -- sessions --------------------------------------------------------------------------------
def test_cancel_a_session_needs_a_reason(logged, db, structure):
    formation = create_formation(structure=structure, state=FormationState.VALIDEE)
    session = create_session(formation=formation)
    db.session.commit()
    page = f"/catalogue/sessions/{session.id}"
    assert "Annuler la session" in logged.get(page).text

    response = _post(logged, f"/catalogue/sessions/{session.id}/annuler", page=page, motif="  ")
    assert "Un motif est obligatoire" in response.text
    assert _reload(db, Session, session.id).state == SessionState.ACTIVE

    response = _post(logged, f"/catalogue/sessions/{session.id}/annuler", page=page,
                     motif="Formateur indisponible")
    assert f"Session {session.reference} annulée" in response.text
    assert _reload(db, Session, session.id).state == SessionState.ANNULEE
    log = db.session.scalar(select(TransitionLog).where(
        TransitionLog.object_type == "session", TransitionLog.object_id == session.id))
    assert (log.transition, log.reason) == ("annuler", "Formateur indisponible")

    response = _post(logged, f"/catalogue/sessions/{session.id}/supprimer", page=page)
    assert "Action refusée" in response.text
    assert _reload(db, Session, session.id).state == SessionState.ANNULEE


def test_cancelled_session_leaves_the_validated_version_too(logged, db, structure):
    formation = create_formation(structure=structure, state=FormationState.VALIDEE)
    session = create_session(formation=formation)
    db.session.flush()
    formation.validated_snapshot = {"intitule": formation.intitule, "sessions": [
        {"reference": session.reference, "state": "active"}]}
    db.session.commit()
    _post(logged, f"/catalogue/sessions/{session.id}/annuler",
          page=f"/catalogue/sessions/{session.id}", motif="Pas assez d'inscrits")
    formation = _reload(db, Formation, formation.id)
    assert formation.validated_snapshot["sessions"][0]["state"] == SessionState.ANNULEE


def test_delete_a_session_but_not_one_with_candidatures(logged, db, structure):
    formation = create_formation(structure=structure)
    session = create_session(formation=formation)
    busy = create_session(formation=formation)
    create_candidature(session=busy)
    other = create_session()
    db.session.commit()

    response = _post(logged, f"/catalogue/sessions/{session.id}/supprimer",
                     page=f"/catalogue/sessions/{session.id}")
    assert f"Session {session.reference} supprimée" in response.text
    assert _reload(db, Session, session.id).state == SessionState.SUPPRIMEE
    assert _logs(db, "session", session.id) == ["supprimer"]

    response = _post(logged, f"/catalogue/sessions/{busy.id}/supprimer",
                     page=f"/catalogue/sessions/{busy.id}")
    assert "a reçu des candidatures" in response.text
    assert _reload(db, Session, busy.id).state == SessionState.ACTIVE

    token = _token(logged)
    assert logged.post(f"/catalogue/sessions/{other.id}/supprimer",
                       data={"csrf_token": token}).status_code == 404
    assert logged.post(f"/catalogue/sessions/{other.id}/annuler",
                       data={"csrf_token": token, "motif": "x"}).status_code == 404


# -- entry points of HSP sessions ------------------------------------------------------------
@pytest.fixture
def hsp_session(db, structure):
    formation = create_formation(structure=structure, dispositif="HSP")
    return create_session(formation=formation, date_debut=dt.date(2026, 4, 1),
                          date_fin=dt.date(2026, 12, 18))


def test_edit_an_entry_point(logged, db, hsp_session):
    entry = create_entry_point(session=hsp_session, date_entree=dt.date(2026, 5, 4), places=8)
    db.session.commit()
    page = f"/catalogue/sessions/{hsp_session.id}"
    assert "04/05/2026" in logged.get(page).text

    response = _post(logged, f"/catalogue/points-entree/{entry.id}", page=page,
                     date_entree="11/05/2026", places="10")
    assert str(escape("Point d'entrée enregistré.")) in response.text
    entry = _reload(db, EntryPoint, entry.id)
    assert (entry.date_entree, entry.places) == (dt.date(2026, 5, 11), 10)

    response = _post(logged, f"/catalogue/points-entree/{entry.id}", page=page,
                     date_entree="11/01/2027", places="10")
    assert "comprise dans la période" in response.text
    response = _post(logged, f"/catalogue/points-entree/{entry.id}", page=page,
                     date_entree="11/05/2026", places="dix")
    assert "nombre de places entier" in response.text
    assert _reload(db, EntryPoint, entry.id).places == 10


def test_entry_point_with_candidatures_keeps_its_date_and_cannot_be_deleted(logged, db,
                                                                           hsp_session):
    entry = create_entry_point(session=hsp_session, date_entree=dt.date(2026, 5, 4), places=8)
    create_candidature(session=hsp_session, entry_point=entry)
    free = create_entry_point(session=hsp_session, date_entree=dt.date(2026, 6, 1), places=5)
    db.session.commit()
    page = f"/catalogue/sessions/{hsp_session.id}"

    response = _post(logged, f"/catalogue/points-entree/{entry.id}/supprimer", page=page)
    assert str(escape("Ce point d'entrée ne peut pas être supprimé : des candidatures "
                      "portent sur lui.")) in response.text
    assert _reload(db, EntryPoint, entry.id) is not None

    response = _post(logged, f"/catalogue/points-entree/{entry.id}", page=page,
                     date_entree="05/05/2026", places="8")
    assert "sa date ne" in response.text
    assert _reload(db, EntryPoint, entry.id).date_entree == dt.date(2026, 5, 4)
    _post(logged, f"/catalogue/points-entree/{entry.id}", page=page,
          date_entree="04/05/2026", places="12")
    assert _reload(db, EntryPoint, entry.id).places == 12

    response = _post(logged, f"/catalogue/points-entree/{free.id}/supprimer", page=page)
    assert str(escape("Point d'entrée supprimé.")) in response.text
    assert _reload(db, EntryPoint, free.id) is None


def test_entry_points_of_another_of_are_not_found(logged, db):
    other = create_entry_point()
    db.session.commit()
    token = _token(logged)
    assert logged.post(f"/catalogue/points-entree/{other.id}",
                       data={"csrf_token": token, "date_entree": "01/05/2026",
                             "places": "3"}).status_code == 404
    assert logged.post(f"/catalogue/points-entree/{other.id}/supprimer",
                       data={"csrf_token": token}).status_code == 404
    assert _reload(db, EntryPoint, other.id) is not None

"""Moderators: the queue, the side-by-side changes and the bulk decisions."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from backoffice import clock
from backoffice.extensions import db as _db
from backoffice.models import (Formation, FormationState, OfProfile, OutboundMessage,
                               StaffRole, TransitionLog)
from backoffice.services import catalogue as service
from tests.conftest import csrf_token, login
from tests.factories import (create_formation, create_member, create_publishable_formation,
                             create_staff, create_structure)

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.timezone.utc)
QUEUE = "/admin/moderation-formations/"


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def moderator(db):
    user = create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    return user


@pytest.fixture
def moderator_client(client, moderator):
    login(client, moderator)
    return client


def _waiting(state=FormationState.EN_ATTENTE_MODERATION, days=1, **overrides):
    return create_formation(state=state, submitted_at=NOW - dt.timedelta(days=days),
                            **overrides)


def test_queue_lists_waiting_formations_oldest_first_with_time_waiting(moderator_client, db):
    recent = _waiting(days=1, intitule="Récente")
    old = _waiting(FormationState.MODIFIEE, days=6, intitule="Ancienne",
                   validated_snapshot={"intitule": "Avant"})
    create_formation(state=FormationState.BROUILLON, intitule="Brouillon absent")
    create_formation(state=FormationState.VALIDEE, intitule="Validée absente")
    db.session.commit()
    page = moderator_client.get(QUEUE).text
    assert page.index("Ancienne") < page.index("Récente")
    assert "6 j 0 h" in page and "1 j 0 h" in page
    assert "absente" not in page and "Brouillon absent" not in page
    assert "Voir les modifications" in page
    assert recent.reference in page and old.reference in page


def test_queue_is_for_moderators_only(client, db):
    structure = create_structure()
    user = create_member(structure, profile_of=OfProfile.GENERAL)
    db.session.commit()
    assert client.get(QUEUE).status_code == 302
    login(client, user)
    assert client.get(QUEUE).status_code == 403


def test_bulk_validate(moderator_client, db):
    first, second = _waiting(days=2), _waiting(FormationState.MODIFIEE, days=1,
                                              validated_snapshot={"intitule": "x"})
    db.session.commit()
    page = moderator_client.get(QUEUE)
    response = moderator_client.post(QUEUE + "action/", data={
        "csrf_token": csrf_token(page.text), "action": "valider",
        "rowid": [str(first.id), str(second.id)], "url": QUEUE})
    assert response.status_code == 302
    _db.session.expire_all()
    for formation in (first, second):
        formation = _db.session.get(Formation, formation.id)
        assert formation.state == FormationState.VALIDEE
        assert formation.validated_snapshot is None
        assert formation.validated_at == NOW
    logs = _db.session.scalars(select(TransitionLog.transition)).all()
    assert logs == ["valider", "valider"]


def test_complement_needs_a_comment_and_is_emailed_to_the_of(moderator_client, db):
    structure = create_structure()
    member = create_member(structure, profile_of=OfProfile.CATALOGUE)
    formations = [_waiting(structure=structure, days=3), _waiting(structure=structure, days=2)]
    db.session.commit()
    ids = [str(f.id) for f in formations]

    page = moderator_client.get(QUEUE)
    assert "Demander un complément" in page.text
    response = moderator_client.post(QUEUE + "action/", data={
        "csrf_token": csrf_token(page.text), "action": "demander_complement",
        "rowid": ids, "url": QUEUE, "commentaire": "  "}, follow_redirects=True)
    assert "Le commentaire est obligatoire" in response.text
    _db.session.expire_all()
    assert {f.state for f in _db.session.scalars(select(Formation))} == {
        FormationState.EN_ATTENTE_MODERATION}

    response = moderator_client.post(QUEUE + "action/", data={
        "csrf_token": csrf_token(page.text), "action": "demander_complement",
        "rowid": ids, "url": QUEUE, "commentaire": "Précisez le programme."})
    assert response.status_code == 302
    _db.session.expire_all()
    for formation in _db.session.scalars(select(Formation)):
        assert formation.state == FormationState.COMPLEMENT_DEMANDE
        assert formation.moderation_comment == "Précisez le programme."
    mails = _db.session.scalars(select(OutboundMessage)).all()
    assert len(mails) == 2
    assert {m.recipient for m in mails} == {member.email}
    assert all("Précisez le programme." in m.body_text for m in mails)


def test_a_failed_formation_does_not_stop_the_others(moderator_client, db):
    waiting = _waiting()
    validated = create_formation(state=FormationState.VALIDEE)
    db.session.commit()
    page = moderator_client.get(QUEUE)
    response = moderator_client.post(QUEUE + "action/", data={
        "csrf_token": csrf_token(page.text), "action": "valider",
        "rowid": [str(validated.id), str(waiting.id)], "url": QUEUE}, follow_redirects=True)
    assert "n&#39;est pas possible" in response.text
    _db.session.expire_all()
    assert _db.session.get(Formation, waiting.id).state == FormationState.VALIDEE


def test_side_by_side_changes_of_a_modified_formation(moderator_client, db, client):
    """The OF edits a validated formation and publishes; the moderator sees what changed."""
    structure = create_structure()
    formation = create_publishable_formation(structure, state=FormationState.VALIDEE,
                                             intitule="Titre validé", financement="Région")
    user = create_member(structure, profile_of=OfProfile.CATALOGUE)
    db.session.commit()
    formation.validated_snapshot = service.snapshot(formation)
    formation.intitule = "Titre modifié"
    service.confirm_publication(formation, actor=user)
    db.session.commit()

    page = moderator_client.get(QUEUE + f"modifications/{formation.id}")
    assert page.status_code == 200
    text = page.text
    assert "Titre validé" in text and "Titre modifié" in text
    assert "Financement" not in text  # unchanged fields are not listed

    response = moderator_client.post(QUEUE + f"decision/{formation.id}", data={
        "csrf_token": csrf_token(text), "decision": "valider"})
    assert response.status_code == 302
    _db.session.expire_all()
    formation = _db.session.get(Formation, formation.id)
    assert formation.state == FormationState.VALIDEE
    assert formation.validated_snapshot is None
    assert moderator_client.get(QUEUE + f"modifications/{formation.id}").status_code == 404

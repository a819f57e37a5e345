"""Admin: the Workflows diagrams, and on every detail page the object's history and the
transitions the current user may fire."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backoffice import workflow
from backoffice.models import Formation, StaffRole, TransitionLog
from tests.conftest import csrf_token, login
from tests.factories import create_formation, create_staff


@pytest.fixture
def moderator_client(client, db):
    user = create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, user)
    return client


def test_workflows_screen_draws_every_workflow(moderator_client):
    page = moderator_client.get("/admin/workflows/")
    assert page.status_code == 200
    assert page.text.count("<svg") == len(workflow.workflows())
    assert "Demander un complément" in page.text and "modérateur, administrateur" in page.text


def test_detail_page_shows_history_and_allowed_transitions(moderator_client, db):
    formation = create_formation(state="en_attente_moderation")
    db.session.commit()
    page = moderator_client.get(f"/admin/formation/details/?id={formation.id}")
    assert page.status_code == 200
    assert "État : En attente de modération" in page.text
    assert ">Valider</button>" in page.text and ">Demander un complément</button>" in page.text
    assert "Confirmer la publication" not in page.text  # an OF's transition


def test_moderator_fires_a_transition_from_the_detail_page(moderator_client, db):
    formation = create_formation(state="en_attente_moderation")
    db.session.commit()
    url = f"/admin/formation/details/?id={formation.id}"
    response = moderator_client.post("/admin/formation/transition/", data={
        "id": formation.id, "transition": "demander_complement",
        "reason": "Le lieu de formation est incomplet",
        "csrf_token": csrf_token(moderator_client.get(url).text)})
    assert response.status_code == 302
    page = moderator_client.get(url)
    assert "Nouvel état : Complément demandé" in page.text
    assert "Le lieu de formation est incomplet" in page.text  # in the history
    db.session.expire_all()
    assert db.session.get(Formation, formation.id).state == "complement_demande"


def test_refused_transition_is_explained_and_changes_nothing(moderator_client, db):
    formation = create_formation(state="brouillon")
    db.session.commit()
    url = f"/admin/formation/details/?id={formation.id}"
    moderator_client.post("/admin/formation/transition/", data={
        "id": formation.id, "transition": "publier",
        "csrf_token": csrf_token(moderator_client.get(url).text)})
    page = moderator_client.get(url)
    assert "Vous n&#39;avez pas le droit de faire « Confirmer la publication »" in page.text
    assert db.session.scalar(select(TransitionLog)) is None


def test_state_is_not_editable_in_admin_forms(moderator_client, db):
    formation = create_formation()
    db.session.commit()
    page = moderator_client.get(f"/admin/formation/edit/?id={formation.id}")
    assert page.status_code == 200
    assert 'name="state"' not in page.text


def test_validating_a_referencing_request_in_the_admin_creates_the_structure(moderator_client, db):
    from backoffice.models import ReferencingRequest, Structure

    request = ReferencingRequest(raison_sociale="Mission locale des Landes", siret="44306184100047",
                                 kind="prescripteur", prescriber_type="mission_locale")
    db.session.add(request)
    db.session.commit()
    url = f"/admin/referencingrequest/details/?id={request.id}"
    moderator_client.post("/admin/referencingrequest/transition/", data={
        "id": request.id, "transition": "valider",
        "csrf_token": csrf_token(moderator_client.get(url).text)})
    structure = db.session.scalar(select(Structure))
    assert (structure.raison_sociale, structure.siret) == ("Mission locale des Landes",
                                                           "44306184100047")
    # A second request for the same SIRET is refused with the service's French message.
    again = ReferencingRequest(raison_sociale="Doublon", siret="44306184100047",
                               kind="prescripteur", prescriber_type="mission_locale")
    db.session.add(again)
    db.session.commit()
    url = f"/admin/referencingrequest/details/?id={again.id}"
    moderator_client.post("/admin/referencingrequest/transition/", data={
        "id": again.id, "transition": "valider",
        "csrf_token": csrf_token(moderator_client.get(url).text)})
    assert "existe déjà" in moderator_client.get(url).text
    assert db.session.scalar(select(func.count()).select_from(Structure)) == 1

"""The référent changes a user's profiles: one per family (OF, prescriber, ParcoursPro), only
the families the structure's kind allows, ``beneficiaire`` always kept."""
from __future__ import annotations

from sqlalchemy import select

from backoffice.models import Membership, StructureKind
from tests import factories
from tests.conftest import csrf_token, login


def _setup(db, kind=StructureKind.MIXTE):
    structure = factories.create_structure(kind=kind, prescriber_type="mission_locale"
                                           if kind != StructureKind.ORGANISME_FORMATION else None)
    referent = factories.create_referent(structure)
    colleague = factories.create_member(structure)
    membership = db.session.scalar(select(Membership).where(Membership.user_id == colleague.id))
    db.session.commit()
    return structure, referent, colleague, membership


def _post_rights(client, membership, **fields):
    page = client.get(f"/referent/utilisateurs/{membership.id}/droits")
    assert page.status_code == 200
    data = {"csrf_token": csrf_token(page.text)}
    data.update(fields)
    return client.post(f"/referent/utilisateurs/{membership.id}/droits", data=data,
                       follow_redirects=True)


def test_one_profile_per_family_replaced_not_added(client, db):
    _, referent, colleague, membership = _setup(db)
    login(client, referent)
    page = client.get(f"/referent/utilisateurs/{membership.id}/droits")
    for code in ("gestionnaire_of_general", "prescripteur_n3", "prestataire"):
        assert f'value="{code}"' in page.text  # a mixed OF/prescriber structure: every family

    response = _post_rights(client, membership, profile_of="gestionnaire_of_catalogue",
                            profile_prescripteur="prescripteur_n1",
                            profile_parcourspro="employeur")
    assert f"Droits de {colleague.full_name} enregistrés" in response.text
    db.session.expire_all()
    assert membership.profiles == ["gestionnaire_of_catalogue", "prescripteur_n1", "employeur",
                                   "beneficiaire"]

    # a new profile of a family replaces the previous one; two values for one family: one kept
    _post_rights(client, membership, profile_of=["gestionnaire_of_general",
                                                 "gestionnaire_of_preinscription"],
                 profile_prescripteur="prescripteur_n3", profile_parcourspro="prestataire")
    db.session.expire_all()
    assert (membership.profile_of, membership.profile_prescripteur,
            membership.profile_parcourspro) == ("gestionnaire_of_general", "prescripteur_n3",
                                                "prestataire")

    # profiles removed one family at a time; the ParcoursPro bénéficiaire stays
    _post_rights(client, membership, profile_of="", profile_prescripteur="prescripteur_n3",
                 profile_parcourspro="")
    db.session.expire_all()
    assert membership.profiles == ["prescripteur_n3", "beneficiaire"]
    _post_rights(client, membership)
    db.session.expire_all()
    assert membership.profiles == ["beneficiaire"] and not membership.has_management_profile
    assert "Aucun droit" in client.get("/referent/").text


def test_profile_of_another_family_or_kind_refused(client, db):
    _, referent, _, membership = _setup(db, kind=StructureKind.ORGANISME_FORMATION)
    login(client, referent)
    page = client.get(f"/referent/utilisateurs/{membership.id}/droits")
    assert "prescripteur_n1" not in page.text  # an OF only: no prescriber family
    for fields in ({"profile_prescripteur": "prescripteur_n1"},
                   {"profile_of": "prescripteur_n1"},
                   {"profile_parcourspro": "gestionnaire_of_general"}):
        response = _post_rights(client, membership, **fields)
        assert "existe pas pour cette structure" in response.text
    db.session.expire_all()
    assert membership.profiles == ["beneficiaire"]


def test_prestataire_only_in_training_organisations(client, db):
    _, referent, _, membership = _setup(db, kind=StructureKind.PRESCRIPTEUR)
    login(client, referent)
    response = _post_rights(client, membership, profile_parcourspro="prestataire")
    assert "existe pas pour cette structure" in response.text
    _post_rights(client, membership, profile_parcourspro="employeur",
                 profile_prescripteur="prescripteur_n2")
    db.session.expire_all()
    assert membership.profiles == ["prescripteur_n2", "employeur", "beneficiaire"]


def test_referent_right_given_then_taken_back(client, db):
    _, referent, _, membership = _setup(db)
    mine = db.session.scalar(select(Membership).where(Membership.user_id == referent.id))
    login(client, referent)
    _post_rights(client, membership, is_referent="y")
    db.session.expire_all()
    assert membership.is_referent
    # two référents now: this one may give up the right
    _post_rights(client, mine)
    db.session.expire_all()
    assert not mine.is_referent and membership.is_referent

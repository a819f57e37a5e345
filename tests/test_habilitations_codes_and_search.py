"""The administration's page issuing activation codes (single use, expiring), and the search
of the démarche's users: by SIRET or name, filtered by role and by tiers yes/no."""
from __future__ import annotations

import datetime as dt
import re

from backoffice import clock, siret
from backoffice.models import StaffRole
from backoffice.services import accounts as service
from tests import factories
from tests.conftest import csrf_token, login
from tests.test_accounts_registration_and_activation import other_client

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
SIRET = siret.make(55555555)
OTHER_SIRET = siret.make(57777777)
SIRET_TIERS = siret.make(66666666)


def _activate(client, siret_value, code):
    page = client.get("/habilitations/")
    return client.post("/habilitations/activer", data={
        "csrf_token": csrf_token(page.text), "code-siret": siret_value, "code-code": code},
        follow_redirects=True)


def test_only_admins_issue_codes(app, client, db):
    moderator = factories.create_staff(StaffRole.MODERATEUR)
    user = factories.create_member()
    db.session.commit()
    login(client, moderator)
    assert client.get("/habilitations/codes").status_code == 403
    client = other_client(app)
    login(client, user)
    assert client.get("/habilitations/codes").status_code == 403


def test_admin_issues_a_single_use_code_for_a_siret(app, client, db):
    clock.set_now(T0)
    admin = factories.create_staff(StaffRole.ADMIN)
    manager = factories.create_member()
    db.session.commit()
    login(client, admin)
    page = client.get("/habilitations/codes")
    bad = client.post("/habilitations/codes", data={"csrf_token": csrf_token(page.text),
                                                     "siret": "12345678901234"})
    assert "pas valide" in bad.text and "Code à transmettre" not in bad.text
    response = client.post("/habilitations/codes", data={"csrf_token": csrf_token(page.text),
                                                          "siret": SIRET})
    assert "Code à transmettre" in response.text
    code = re.search(r"<code>([^<]+)</code>", response.text).group(1)

    client = other_client(app)
    login(client, manager)
    wrong_siret = _activate(client, OTHER_SIRET, code)
    assert "pas valide pour ce SIRET" in wrong_siret.text
    assert service.gestionnaire_sirets(manager) == []
    response = _activate(client, SIRET, code)
    assert f"Vous êtes gestionnaire du SIRET {SIRET}" in response.text
    assert service.gestionnaire_sirets(manager) == [SIRET]
    assert "déjà été utilisé" in _activate(client, SIRET, code).text


def test_code_expires_after_thirty_days(client, db):
    clock.set_now(T0)
    manager = factories.create_member()
    code = service.issue_habilitation_code(SIRET)
    db.session.commit()
    clock.set_now(T0 + dt.timedelta(days=30, minutes=1))
    login(client, manager)
    assert "expiré" in _activate(client, SIRET, code).text
    assert service.gestionnaire_sirets(manager) == []


def _results(page_text: str) -> str:
    """Only the « Utilisateurs de la démarche » table of the page."""
    return page_text.split("Utilisateurs de la démarche", 1)[1]


def _search_setup(db):
    manager = factories.create_user(email="gestionnaire@exemple.fr")
    factories.create_habilitation(manager, SIRET, role="gestionnaire")
    declarant = factories.create_user(email="declarant@exemple.fr", nom="Dupont")
    factories.create_habilitation(declarant, SIRET, role="declarant")
    asked = factories.create_user(email="demandeur@exemple.fr", nom="Dupond")
    factories.create_habilitation(asked, SIRET, role="declarant", state="demandee")
    elsewhere = factories.create_user(email="ailleurs@exemple.fr", nom="Dupont-Ailleurs")
    factories.create_habilitation(elsewhere, OTHER_SIRET, role="gestionnaire")
    third = factories.create_user(email="tiers@exemple.fr", nom="Tiersen")
    factories.create_delegation(manager, SIRET, siret_tiers=SIRET_TIERS,
                                email_tiers="tiers@exemple.fr", accepted_by=third,
                                role="gestionnaire")
    factories.create_delegation(manager, SIRET, email_tiers="propose@exemple.fr",
                                state="proposee")
    db.session.commit()
    return manager


def test_demarche_users_search_by_siret_or_name_with_filters(client, db):
    manager = _search_setup(db)
    login(client, manager)

    def search(**params):
        response = client.get("/habilitations/", query_string=params)
        assert response.status_code == 200
        return _results(response.text)

    everything = search()
    for email in ("gestionnaire@exemple.fr", "declarant@exemple.fr", "tiers@exemple.fr"):
        assert email in everything
    # other SIRETs, pending requests and delegations not accepted are not users of the démarche
    for email in ("ailleurs@exemple.fr", "demandeur@exemple.fr", "propose@exemple.fr"):
        assert email not in everything

    by_siret = search(q=SIRET)
    assert "declarant@exemple.fr" in by_siret and "tiers@exemple.fr" in by_siret
    by_tiers_siret = search(q=SIRET_TIERS)
    assert "tiers@exemple.fr" in by_tiers_siret and "declarant@exemple.fr" not in by_tiers_siret
    by_name = search(q="dupont")
    assert "declarant@exemple.fr" in by_name and "gestionnaire@exemple.fr" not in by_name

    declarants = search(role="declarant")
    assert "declarant@exemple.fr" in declarants
    assert "gestionnaire@exemple.fr" not in declarants and "tiers@exemple.fr" not in declarants
    managers = search(role="gestionnaire")
    assert "gestionnaire@exemple.fr" in managers and "tiers@exemple.fr" in managers
    assert "declarant@exemple.fr" not in managers

    tiers_only = search(tiers="oui")
    assert "tiers@exemple.fr" in tiers_only and f"SIRET {SIRET_TIERS}" in tiers_only
    assert "declarant@exemple.fr" not in tiers_only
    no_tiers = search(tiers="non")
    assert "tiers@exemple.fr" not in no_tiers and "declarant@exemple.fr" in no_tiers
    combined = search(q="dupont", role="gestionnaire", tiers="non")
    assert "Aucun utilisateur" in combined


def test_admin_searches_every_siret_others_see_nothing(app, client, db):
    _search_setup(db)
    admin = factories.create_staff(StaffRole.ADMIN)
    nobody = factories.create_member()
    db.session.commit()
    login(client, admin)
    page = _results(client.get("/habilitations/", query_string={"q": "dupont"}).text)
    assert "declarant@exemple.fr" in page and "ailleurs@exemple.fr" in page

    client = other_client(app)
    login(client, nobody)
    page = client.get("/habilitations/", query_string={"q": SIRET})
    assert "Utilisateurs de la démarche" not in page.text
    assert "declarant@exemple.fr" not in page.text

"""Links in e-mails come from PUBLIC_BASE_URL, never from the request: a foreign Host
header is refused (400) before anything is queued, services called without any request
(a job, the CLI) build the same links, and X-Forwarded-* headers count only behind the
configured number of proxies."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography.fernet import Fernet
from flask import has_request_context, request
from sqlalchemy import func, select

from backoffice import clock, create_app, siret
from backoffice.config import TestingConfig
from backoffice.models import OutboundMessage, Token, UserState
from backoffice.services import accounts as service
from tests import factories
from tests.conftest import csrf_token, delivered_text

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
PUBLIC = "https://offre.exemple.fr/backoffice"
URL = re.compile(r"https?://[^\s\"'<>]+")


def _links(message) -> list[str]:
    return URL.findall(delivered_text(message))


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_reset_posted_with_a_foreign_host_is_refused_and_queues_nothing(app, client, db):
    """« Mot de passe oublié » posted with Host: attaquant.example, session and CSRF token
    included: a French 400 page, no link issued, no e-mail queued."""
    clock.set_now(T0)
    factories.create_user(email="paul@exemple.fr")
    db.session.commit()
    token = csrf_token(client.get("/mot-de-passe-oublie").text)
    session_cookie = client.get_cookie("session")
    client.set_cookie("session", session_cookie.value, domain="attaquant.example")

    response = client.post("/mot-de-passe-oublie", base_url="http://attaquant.example",
                           data={"email": "paul@exemple.fr", "csrf_token": token})
    assert response.status_code == 400
    assert "Adresse non reconnue" in response.text
    assert _count(db, OutboundMessage) == 0 and _count(db, Token) == 0
    assert client.get("/connexion", headers={"Host": "attaquant.example"}).status_code == 400

    response = client.post("/mot-de-passe-oublie", data={"email": "paul@exemple.fr",
                                                         "csrf_token": token})
    assert response.status_code == 302  # the trusted host still works
    assert _count(db, OutboundMessage) == 1


def test_reset_through_the_public_host_links_to_public_base_url(app, client, db, monkeypatch):
    """The reset e-mail's link starts with PUBLIC_BASE_URL, whatever host served the form."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    clock.set_now(T0)
    factories.create_user(email="paul@exemple.fr")
    db.session.commit()
    page = client.get("/mot-de-passe-oublie")
    client.post("/mot-de-passe-oublie", data={"email": "paul@exemple.fr",
                                              "csrf_token": csrf_token(page.text)})
    message = db.session.scalar(select(OutboundMessage))
    [link] = _links(message)
    assert link.startswith(f"{PUBLIC}/reinitialisation/")


def _queue_every_accounts_email() -> dict[str, list[str]]:
    """Each e-mailing service of accounts, called directly; {recipient: expected paths}."""
    sirets = siret.make(55555555), siret.make(66666666)
    admin = factories.create_staff("admin")
    manager = factories.create_user(email="gestionnaire@exemple.fr")
    factories.create_habilitation(manager, sirets[0], role="gestionnaire")
    asker = factories.create_user()
    newcomer = factories.create_user(email="nouveau@exemple.fr", state=UserState.A_ACTIVER)
    existing = factories.create_user(email="deja@exemple.fr")
    service.request_password_reset(admin.email)
    service.send_activation(newcomer)
    service.request_email_change(asker, "nouvelle@exemple.fr")
    service.delegate(actor=admin, siret_etablissement=sirets[0], siret_tiers=sirets[1],
                     email_tiers="tiers@exemple.fr", role="declarant", end_date=None)
    service.register(email=existing.email, password=factories.PASSWORD, nom="N", prenom="P",
                     fonction=None, telephone=None)
    service.request_access(asker, sirets[0], "declarant")
    return {admin.email: ["/reinitialisation/"], newcomer.email: ["/activation/"],
            "nouvelle@exemple.fr": ["/confirmation-courriel/"],
            "tiers@exemple.fr": ["/delegations/accepter/"],
            existing.email: ["/connexion", "/mot-de-passe-oublie"],
            manager.email: ["/habilitations/"]}


def test_services_called_without_any_request_queue_public_links(app, db, monkeypatch):
    """From an application context of its own, as the CLI or a job pushes (no request,
    no SERVER_NAME), every e-mailing service of accounts builds its links from
    PUBLIC_BASE_URL."""
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", PUBLIC)
    monkeypatch.setitem(app.config, "SERVER_NAME", None)
    clock.set_now(T0)
    with app.app_context():
        assert not has_request_context()
        expected = _queue_every_accounts_email()
        db.session.commit()

    messages = {m.recipient: m for m in db.session.scalars(select(OutboundMessage))}
    assert set(messages) == set(expected)
    for recipient, paths in expected.items():
        links = _links(messages[recipient])
        assert len(links) == len(paths), (recipient, links)
        for link, path in zip(links, paths):
            assert link.startswith(PUBLIC + path), (recipient, link)


def _app_behind(hops: int, **config):
    app = create_app(type("Config", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": "sqlite://", "PROXY_FIX_HOPS": hops, **config}))
    app.add_url_rule("/adresse-client", "client_address",
                     lambda: f"{request.remote_addr} {request.scheme} {request.host}")
    return app


@pytest.mark.parametrize("hops, expected", [
    (0, "127.0.0.1 http localhost"),
    (1, "203.0.113.7 https offre.exemple.fr"),
])
def test_forwarded_headers_count_only_behind_configured_proxies(hops, expected):
    """With PROXY_FIX_HOPS=1, the proxy's X-Forwarded-For/-Proto/-Host give the client
    address, scheme and host; with 0 (the default) they are ignored."""
    app = _app_behind(hops, TRUSTED_HOSTS=["localhost", "offre.exemple.fr"])
    response = app.test_client().get("/adresse-client", environ_base={
        "REMOTE_ADDR": "127.0.0.1"}, headers={
        "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "offre.exemple.fr"})
    assert response.text == expected


def test_a_forwarded_host_is_checked_against_trusted_hosts():
    """Behind a proxy, a forged X-Forwarded-Host is refused like a forged Host."""
    app = _app_behind(1)
    response = app.test_client().get("/adresse-client", headers={
        "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "attaquant.example"})
    assert response.status_code == 400 and "Adresse non reconnue" in response.text


def test_production_requires_an_https_public_base_url(monkeypatch):
    """BACKOFFICE_ENV=production refuses to start without PUBLIC_BASE_URL (or with an
    http:// one); once set, only its host is trusted."""
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    base = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "une-vraie-clef",
            "TRUSTED_HOSTS": None, "NIR_ENCRYPTION_KEYS": Fernet.generate_key().decode()}

    def start(**config):
        return create_app(type("Config", (TestingConfig,), {**base, **config}))

    from backoffice.config import DEFAULT_PUBLIC_BASE_URL

    with pytest.raises(RuntimeError, match="PUBLIC_BASE_URL doit être défini en production"):
        start(PUBLIC_BASE_URL=DEFAULT_PUBLIC_BASE_URL)
    with pytest.raises(RuntimeError, match="https://"):
        start(PUBLIC_BASE_URL="http://offre.exemple.fr")
    with pytest.raises(RuntimeError, match="adresse absolue"):
        start(PUBLIC_BASE_URL="offre.exemple.fr")
    app = start(PUBLIC_BASE_URL="https://offre.exemple.fr")
    assert app.config["TRUSTED_HOSTS"] == ["offre.exemple.fr"]
    assert app.test_client().get("/connexion").status_code == 400  # localhost not trusted
    assert app.test_client().get("/connexion", base_url="https://offre.exemple.fr") \
        .status_code == 200

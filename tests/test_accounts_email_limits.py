"""The public forms that send e-mails (forgotten password, registration) are limited per
recipient (3 an hour) and per client address (20 an hour): beyond, the page answers exactly
the same — nothing tells whether the account exists or the limit is reached — and nothing
is queued. The limits decay after the hour."""
from __future__ import annotations

import datetime as dt

from flask import g
from sqlalchemy import func, select

from backoffice import clock
from backoffice.models import OutboundMessage, StructureKind, User
from tests import factories
from tests.conftest import csrf_token

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
NEUTRAL = "Si un compte correspond à cette adresse, un courriel vient de lui être envoyé"


def _browser(app, remote_addr="127.0.0.1"):
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    browser = app.test_client()
    browser.environ_base["REMOTE_ADDR"] = remote_addr
    return browser


def _ask_reset(browser, email):
    page = browser.get("/mot-de-passe-oublie")
    return browser.post("/mot-de-passe-oublie", data={
        "email": email, "csrf_token": csrf_token(page.text)}, follow_redirects=True)


def _messages(db, recipient=None) -> int:
    query = select(func.count()).select_from(OutboundMessage)
    if recipient:
        query = query.where(OutboundMessage.recipient == recipient)
    return db.session.scalar(query)


def test_thirty_resets_for_one_victim_queue_three_emails(app, db):
    clock.set_now(T0)
    factories.create_user(email="victime@exemple.fr")
    db.session.commit()
    browser = _browser(app)
    answers = {_ask_reset(browser, "victime@exemple.fr").text.split(NEUTRAL)[0][-200:]
               for _ in range(30)}
    assert _messages(db, "victime@exemple.fr") == 3
    assert len(answers) == 1  # the same page every time
    assert NEUTRAL in _ask_reset(browser, "victime@exemple.fr").text
    clock.set_now(T0 + dt.timedelta(minutes=61))
    _ask_reset(browser, "victime@exemple.fr")
    assert _messages(db, "victime@exemple.fr") == 4


def test_one_address_asks_twenty_emails_an_hour_at_most(app, db):
    clock.set_now(T0)
    for n in range(25):
        factories.create_user(email=f"personne{n}@exemple.fr")
    db.session.commit()
    browser = _browser(app, "198.51.100.20")
    for n in range(25):
        assert NEUTRAL in _ask_reset(browser, f"personne{n}@exemple.fr").text
    assert _messages(db) == 20
    _ask_reset(_browser(app, "203.0.113.9"), "personne24@exemple.fr")
    assert _messages(db, "personne24@exemple.fr") == 1  # another address is not limited


def test_registration_emails_are_limited_too(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_EMAILS_PER_ADDRESS", 8)
    clock.set_now(T0)
    factories.create_user(email="prise@exemple.fr")
    structure = factories.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                           prescriber_type="mission_locale")
    db.session.commit()
    url = f"/inscription?structure_id={structure.id}"

    def register(email):
        browser = _browser(app)
        page = browser.get(url)
        return browser.post(url, data={
            "csrf_token": csrf_token(page.text), "structure_recherche": "Mission locale",
            "kind": "prescripteur", "prescriber_type": "mission_locale", "email": email,
            "mot_de_passe": "trois chevaux dans la lande",
            "mot_de_passe_confirmation": "trois chevaux dans la lande",
            "nom": "Martin", "prenom": "Claire", "consentement": "oui"})

    for _ in range(6):
        assert register("prise@exemple.fr").headers["Location"] == "/inscription/envoyee"
    assert _messages(db, "prise@exemple.fr") == 3  # « compte existant » e-mails
    for n in range(2):  # 6 + 2 = 8 from this address
        assert register(f"nouveau{n}@exemple.fr").status_code == 302
    beyond = register("encore@exemple.fr")
    assert beyond.headers["Location"] == "/inscription/envoyee"  # the same answer
    assert db.session.scalar(select(User).where(User.email == "encore@exemple.fr")) is None
    assert _messages(db, "encore@exemple.fr") == 0

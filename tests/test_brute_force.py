"""After 5 failed logins on an account or from an address, a growing delay; the message
never says whether the login or the password was wrong."""
from __future__ import annotations

import datetime as dt

from backoffice import clock
from tests import factories
from tests.conftest import login

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def test_delay_after_five_failures_then_grows(client, db):
    clock.set_now(T0)
    user = factories.create_user()
    db.session.commit()
    unknown = login(client, "personne@exemple.fr", "mauvais mot de passe")
    wrong = login(client, user, "mauvais mot de passe")
    assert "Identifiant ou mot de passe incorrect" in unknown.text
    assert "Identifiant ou mot de passe incorrect" in wrong.text
    for _ in range(3):
        login(client, user, "mauvais mot de passe")
    # 5 failures on this account: even the right password waits 30 s
    blocked = login(client, user)
    assert blocked.status_code == 200 and "Réessayez dans 30 secondes" in blocked.text
    clock.set_now(T0 + dt.timedelta(seconds=31))
    login(client, user, "encore faux mot de passe")
    blocked = login(client, user)
    assert "Réessayez dans 1 minute" in blocked.text  # 60 s now
    clock.set_now(T0 + dt.timedelta(seconds=92))
    assert login(client, user).status_code == 302


def test_address_blocked_across_accounts(client, db):
    clock.set_now(T0)
    user = factories.create_user()
    db.session.commit()
    for n in range(5):
        login(client, f"inconnu{n}@exemple.fr", "mauvais mot de passe")
    assert "Trop de tentatives" in login(client, user).text

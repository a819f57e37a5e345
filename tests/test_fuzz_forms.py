"""Bounded fuzz test: every form of every page, for every role, under hostile values.

For each role (anonymous, OF, prescriber, référent, moderator, policy owner, admin) the
test logs in as a user would, crawls the GET pages of the URL map (those without path
parameters, plus those whose parameters name the objects created here, plus the edit and
detail pages of every admin screen), and parses every ``<form>`` with its fields, buttons
and CSRF token. Then it sends hostile values:

* a sweep: every form once per payload, the payload in every field at once;
* hypothesis (derandomized, bounded): one form, each field either its value from the page
  or a payload — so that the valid fields let the view go on with the hostile one;
* the query string of every GET page (search pages, filters, AJAX lookups).

What a user observes: never a 500, never a hostile value reaching the database (the
last-resort error handler logs it: the test fails on that log too), and never a payload
shown back unescaped. The rule editor is left out: every « Essayer » or « Activer » starts
a child process that reads the text (``test_rules_child_limits`` and ``test_hostile_input``
send it hostile texts).
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from sqlalchemy import select
from flask_admin.contrib.sqla import ModelView
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backoffice.extensions import db
from backoffice.models import (AccountRequest, EntryPoint, FormationState, Membership,
                               StaffRole, StructureKind)
from tests.conftest import login
from tests.factories import (create_candidature, create_delegation, create_formation,
                             create_habilitation, create_of_manager, create_prescriber,
                             create_published_session, create_referencing_request,
                             create_referent, create_staff, create_structure, create_user)

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
UNESCAPED = (SCRIPT, IMAGE)
TEXT = f"{SCRIPT}{IMAGE}'; DROP TABLE users; -- \U0001f642\u202e"
PAYLOADS = (
    "a\x00b", "\x00", "ligne\x01\x1b[31m\x7f", "x" * 100_000, "é" * 5_000,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u202e 🙂 \u200b", TEXT, SCRIPT, IMAGE, "'; DROP TABLE users; --", "' OR 1=1 --",
    "99999999999999999999", "2147483648", "-1", "-99999999999999999999", "0", "1e308",
    "NaN", "2027-02-30", "31/02/2026", "0000-00-00", "abc", "", " ", "%00", "../../etc/passwd",
    "{{7*7}}", "${7*7}",
)
# The sweep and the query strings use one payload of each kind (the time is bounded); the
# hypothesis phase draws from all of PAYLOADS.
SWEEP = ("a\x00b", TEXT, "99999999999999999999")
QUERY_PAYLOADS = ("a\x00b", f"{SCRIPT}' OR 1=1 --", "99999999999999999999")
QUERY_KEYS = ("q", "page", "id", "sort", "desc", "search", "query", "name", "flt0_0",
              "page_size", "onglet", "session", "de", "a", "format", "next", "commune",
              "organisme", "departement", "dispositif", "role", "tiers", "structure_id",
              "retour", "date_naissance", "nom", "prenom", "url")
SKIPPED_ENDPOINTS = {"static", "admin.static", "auth.logout"}
SKIPPED_ACTIONS = re.compile(r"/deconnexion$|/admin/regles/[^/]+/modifier$")
DB_WARNING = "bad input reached the database"


# -- the pages and their forms -------------------------------------------------------------
@dataclass
class Form:
    page: str
    action: str
    method: str
    fields: dict[str, list[str]] = field(default_factory=dict)  # name → values from the page
    choices: dict[str, list[str]] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [n for n in (*self.fields, *self.choices) if n != "csrf_token"]


class FormParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page, self.forms, self.links = page, [], []
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "form":
            self._form = Form(self.page, urljoin(self.page, a.get("action") or self.page),
                              (a.get("method") or "get").lower())
            self.forms.append(self._form)
        form, name = self._form, a.get("name")
        if form is None or not name:
            return
        kind = (a.get("type") or "text").lower()
        if tag == "input":
            if kind in ("submit", "button", "image"):
                form.buttons.append((name, a.get("value", "")))
            elif kind == "file":
                form.files.append(name)
            elif kind in ("checkbox", "radio"):
                form.choices.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields.setdefault(name, []).append(a.get("value", "on"))
            else:
                form.fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "button" and kind == "submit":
            form.buttons.append((name, a.get("value", "")))
        elif tag == "select":
            self._select = name
            form.choices.setdefault(name, [])
        elif tag == "option" and self._select:
            form.choices[self._select].append(a.get("value", ""))
            if "selected" in a:
                form.fields.setdefault(self._select, []).append(a.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            form.fields.setdefault(name, [""])

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            if self._form is not None and self._select and not self._form.fields.get(
                    self._select) and self._form.choices[self._select]:
                self._form.fields[self._select] = self._form.choices[self._select][:1]
            self._select = None
        elif tag == "textarea":
            self._textarea = None


@pytest.fixture
def world():
    """One object of each kind a page can name, and one user per role."""
    of = create_structure(raison_sociale="Organisme fuzz", kind=StructureKind.ORGANISME_FORMATION)
    referent = create_referent(of, profile_of="gestionnaire_of_general")
    of_user = create_of_manager(of, profile="gestionnaire_of_general")
    prescriber = create_prescriber()
    prescriber_membership = db.session.query(Membership).filter_by(user=prescriber).one()
    session = create_published_session()
    session.formation.structure = of
    entry_point = EntryPoint(session=session, date_entree=session.date_debut, places=4)
    db.session.add(entry_point)
    candidature = create_candidature(
        session=session, prescriber_user=prescriber,
        prescriber_structure=prescriber_membership.structure)
    # A formation in the moderation queue (its page has the bulk actions).
    create_formation(structure=of, state=FormationState.EN_ATTENTE_MODERATION)
    newcomer = create_user(state="en_attente_validation")
    account_request = AccountRequest(user=newcomer, structure=of)
    db.session.add(account_request)
    habilitation = create_habilitation(user=referent, siret_value=of.siret, role="gestionnaire")
    delegation = create_delegation(referent, of.siret)
    referencing = create_referencing_request(requester=create_user())
    users = {
        "anonyme": None, "of": of_user, "prescripteur": prescriber, "referent": referent,
        "moderateur": create_staff(StaffRole.MODERATEUR),
        "responsable_regles": create_staff(StaffRole.RESPONSABLE_REGLES),
        "admin": create_staff(StaffRole.ADMIN),
    }
    db.session.flush()
    ids = {"formation_id": session.formation_id, "session_id": session.id,
           "candidature_id": candidature.id, "candidate_id": candidature.candidate_id,
           "entry_point_id": entry_point.id, "habilitation_id": habilitation.id,
           "delegation_id": delegation.id,
           "membership_id": db.session.query(Membership).filter_by(user=of_user).one().id,
           "request_id": account_request.id, "id": session.formation_id, "jeu": "publication"}
    del referencing
    db.session.commit()
    return users, ids


def _pages(app, ids) -> list[str]:
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in SKIPPED_ENDPOINTS \
                or rule.endpoint.endswith((".export", ".ajax_update")):
            continue
        if not set(rule.arguments) <= set(ids):
            continue
        with app.test_request_context():
            from flask import url_for
            pages.append(url_for(rule.endpoint, **{k: ids[k] for k in rule.arguments}))
    for view in app.extensions["admin"][0]._views:
        if isinstance(view, ModelView):
            first = db.session.scalar(select(view.model).limit(1))
            if first is not None:
                pages += [f"{view.url}/edit/?id={first.id}", f"{view.url}/details/?id={first.id}"]
    return sorted(set(pages))


def _discover(client, app, ids) -> tuple[list[str], list[Form]]:
    pages, forms, seen = [], [], set()
    for url in _pages(app, ids):
        response = client.get(url)
        assert response.status_code < 500, url
        if response.status_code != 200 or "html" not in response.content_type:
            continue
        pages.append(url)
        parser = FormParser(url)
        parser.feed(response.text)
        for form in parser.forms:
            key = (urlsplit(form.action).path, form.method, tuple(sorted(form.names)))
            if key in seen or SKIPPED_ACTIONS.search(urlsplit(form.action).path):
                continue
            seen.add(key)
            forms.append(form)
    return pages, forms


# -- sending ---------------------------------------------------------------------------------
class Checker:
    def __init__(self, client, caplog):
        self.client, self.caplog, self.sent = client, caplog, 0

    def check(self, response, what: str) -> None:
        self.sent += 1
        assert response.status_code < 500, f"{what}: {response.status_code}"
        if "html" in response.content_type:
            for payload in UNESCAPED:
                assert payload not in response.text, f"{what}: {payload!r} shown unescaped"
        leaked = [r.getMessage() for r in self.caplog.records if DB_WARNING in r.getMessage()]
        self.caplog.clear()
        assert not leaked, f"{what}: {leaked}"

    def submit(self, form: Form, values: dict[str, str], button: tuple[str, str] | None,
               upload: str | None = None) -> None:
        data: dict = {}
        for name in form.names:
            if name in values:
                data[name] = values[name]
            elif form.fields.get(name):
                data[name] = form.fields[name]
        if form.fields.get("csrf_token"):
            data["csrf_token"] = form.fields["csrf_token"][0]
        if button:
            data[button[0]] = button[1]
        what = f"{form.method.upper()} {form.action} {sorted(values)} from {form.page}"
        if form.method == "post":
            for name in form.files:
                body = (upload or "fichier").encode("utf-8", "surrogatepass")
                header = b"reference_formation;intitule\n"
                data[name] = (io.BytesIO(header + body + b";" + body + b"\n"),
                              upload if upload is not None else "offre.csv")
            self.check(self.client.post(form.action, data=data), what)
        else:
            query = urlencode([(k, v) for k, vs in data.items()
                               for v in (vs if isinstance(vs, list) else [vs])])
            self.check(self.client.get(f"{urlsplit(form.action).path}?{query}"), what)


def _fuzz(client, app, ids, caplog) -> Checker:
    pages, forms = _discover(client, app, ids)
    checker = Checker(client, caplog)

    # 1. The sweep: each payload in every field of every form.
    for form in forms:
        for payload in SWEEP:
            values = {name: payload for name in form.names}
            checker.submit(form, values, form.buttons[0] if form.buttons else None, payload)
    # 2. The query string of every page (an admin edit or detail page has the same
    # parameters as its list).
    for url in (page for page in pages if "?" not in page):
        for payload in QUERY_PAYLOADS:
            query = urlencode({key: payload for key in QUERY_KEYS})
            checker.check(client.get(f"{urlsplit(url).path}?{query}"), f"GET {url}?{query}")

    # 3. Hypothesis: some fields hostile, the others as the page gave them.
    if not forms:
        return checker

    @settings(max_examples=min(3 * len(forms), 60), derandomize=True, deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def mixed(data):
        form = data.draw(st.sampled_from(forms), label="form")
        values = {}
        for name in form.names:
            hostile = data.draw(st.booleans(), label=name)
            if hostile:
                values[name] = data.draw(st.sampled_from(PAYLOADS) | st.text(max_size=30),
                                         label=name)
        button = data.draw(st.sampled_from(form.buttons), label="button") \
            if form.buttons else None
        checker.submit(form, values, button)

    mixed()
    return checker


ROLES = ("anonyme", "of", "prescripteur", "referent", "moderateur", "responsable_regles",
         "admin")


@pytest.mark.parametrize("role", ROLES)
def test_hostile_values_in_every_form_never_give_a_500(role, app, client, world, caplog):
    """Whatever a user types in any form or query string, the answer is a page (a field
    error, a French 400/404/422), never a 500, and a payload is never shown unescaped."""
    users, ids = world
    caplog.set_level(logging.WARNING)
    if users[role] is not None:
        login(client, users[role])
    checker = _fuzz(client, app, ids, caplog)
    assert checker.sent > len(SWEEP)

"""Benchmark group « admin_lists »: the Flask-Admin list pages of the back office, over HTTP
(Flask test client), logged in as the demo admin through the real login form and its
second factor (the TOTP code of ``demo.DEMO_TOTP_SECRET``).

The peer of each page is a stock Flask-Admin ``ModelView`` with default settings over the
same table (a separate Flask app and ``Admin`` instance built here, never in the
product): OFFSET pages, a COUNT for the pager, ``ILIKE '%…%'`` search. It is given the
columns, searchable columns and filters of the project's view, so that both pages do the
same work; it has no access control, second factor or access log.

A deep page of the project is the page its pager leads to: its « Suivant » link carries
the cursor of the last row of the page before, which ``cursor_at`` reads once, before the
measures (the peer asks for ``?page=N``). The rare name, the reference and the e-mail
searched are read from the data the same way.
"""
from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Flask
from sqlalchemy import func, select, update

from backoffice import clock
from backoffice.bench import Case, Context

GROUP = "Listes de l'administration"
TARGET_MS = 50
PEER_NAME = "ModelView Flask-Admin par défaut"
DEMO_ADMIN = "admin@demo.fr"
AS_OF = "2026-11-23T10:30"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def _view(app, endpoint: str):
    for admin in app.extensions["admin"]:
        for view in admin._views:
            if view.endpoint == endpoint:
                return view
    raise LookupError(f"aucune vue d'administration « {endpoint} »")


def filter_arg(view, label: str, value: str, position: int = 0) -> dict:
    """``{"flt<position>_<index>": value}`` for the "equals" filter labelled ``label``."""
    from flask_admin.contrib.sqla.filters import FilterEqual

    for index, flt in enumerate(view._filters or ()):
        if flt.name == label and type(flt) is FilterEqual:
            return {f"flt{position}_{view.get_filter_arg(index, flt)}": value}
    raise LookupError(f"{view.endpoint} : pas de filtre « égal à » nommé « {label} »")


def sort_arg(view, column: str) -> dict:
    for index, (name, _label) in enumerate(view._list_columns):
        if name == column:
            return {"sort": index, "desc": 1}
    raise LookupError(f"{view.endpoint} : pas de colonne triable « {column} »")


PEERS: list[Flask] = []  # the peer apps made, until ``close_peers``


def close_peers() -> None:
    """Close the peer apps' database connections (the command's process simply ends)."""
    from backoffice.extensions import db

    while PEERS:
        with PEERS.pop().app_context():
            db.session.remove()
            db.engine.dispose()


def peer_app(app) -> Flask:
    """A bare Flask app with one stock ``ModelView`` per measured list, at /pair/<endpoint>/."""
    from flask_admin import Admin
    from flask_admin.contrib.sqla import ModelView
    from flask_babel import Babel

    from backoffice.extensions import db

    peer = Flask("backoffice_bench_peer")
    peer.config.update(SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
                       SQLALCHEMY_ENGINE_OPTIONS=app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
                       SECRET_KEY="benchmark-peer")
    db.init_app(peer)
    Babel(peer)  # Flask-Admin's templates need it (default locale)
    admin = Admin(peer, name="Pair", url="/pair", endpoint="pair")
    for endpoint in ("candidature", "candidate", "session", "formation", "transitionlog",
                     "outboundmessage"):
        ours = _view(app, endpoint)
        equal_filters = [f for f in ours.column_filters or ()
                         if not isinstance(f, str)]
        attributes = {"column_list": ours.column_list,
                      "column_searchable_list": ours.column_searchable_list,
                      "column_filters": equal_filters or None,
                      "column_default_sort": ours.column_default_sort,
                      "can_set_page_size": True, "page_size_options": (20, 50, 100)}
        view_class = type(f"Peer{ours.model.__name__}View", (ModelView,), attributes)
        admin.add_view(view_class(ours.model, db, endpoint=f"pair_{endpoint}"))
    PEERS.append(peer)
    return peer


def login(client) -> None:
    """The demo admin through the login form, then the second factor."""
    import pyotp

    from backoffice.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET
    from backoffice.extensions import db
    from backoffice.models import User

    # The replay guard refuses a code already used: the benchmark may log in again within
    # the same 30 s step (the clock is set), as the tests do.
    db.session.execute(update(User).where(User.email == DEMO_ADMIN)
                       .values(totp_last_counter=None))
    db.session.commit()

    def token(page) -> dict:
        match = CSRF_RE.search(page.text)
        return {"csrf_token": match.group(1)} if match else {}

    page = client.get("/connexion")
    client.post("/connexion", data={"email": DEMO_ADMIN, "password": DEMO_PASSWORD,
                                    **token(page)})
    page = client.get("/connexion/code")
    response = client.post("/connexion/code", data={
        "code": pyotp.TOTP(DEMO_TOTP_SECRET).at(clock.now()), **token(page)})
    if client.get("/admin/candidature/").status_code != 200:
        raise RuntimeError(f"connexion impossible en tant que {DEMO_ADMIN} "
                           f"(HTTP {response.status_code}) : la base contient-elle les "
                           "données de démonstration ?")


def cursor_at(view, page: int, page_size: int = 20) -> dict:
    """The pager's « Suivant » parameter that leads to ``page`` (0-based, as ``?page=``)
    of the list in its default order: the cursor of the last row of the page before."""
    from backoffice.admin.base import AFTER, encode_cursor
    from backoffice.extensions import db

    column, descending = view._keyset_order(None, None)
    ids = view.model.id
    order = [c.desc() if descending else c.asc() for c in (column, ids) if c is not None]
    row = db.session.execute(select(ids, *(c for c in (column,) if c is not None))
                             .order_by(*order).offset(page * page_size - 1).limit(1)).first()
    if row is None:  # a small database: the last page
        return {}
    return {AFTER: encode_cursor(row[0], row[1] if column is not None else None)}


def _samples() -> dict:
    """A rare candidate name (the only one of its kind, with a candidature), a candidature
    reference, a candidate's e-mail, a recipient of the outbound queue."""
    from backoffice.extensions import db
    from backoffice.models import Candidate, Candidature, OutboundMessage

    rare = db.session.scalar(
        select(Candidate.nom).join(Candidature, Candidature.candidate_id == Candidate.id)
        .group_by(Candidate.nom).having(func.count(func.distinct(Candidate.id)) == 1)
        .order_by(Candidate.nom).limit(1))
    middle = db.session.scalar(select(func.max(Candidature.id))) or 0
    reference = db.session.scalar(select(Candidature.reference)
                                  .where(Candidature.id <= middle // 2)
                                  .order_by(Candidature.id.desc()).limit(1))
    email = db.session.scalar(select(Candidate.email).where(Candidate.email.is_not(None))
                              .order_by(Candidate.id).offset(1000).limit(1)) \
        or db.session.scalar(select(Candidate.email).where(Candidate.email.is_not(None)))
    recipient = db.session.scalar(select(OutboundMessage.recipient)
                                  .order_by(OutboundMessage.id).limit(1))
    return {"rare": rare or "Martin", "reference": reference or "0", "email": email or "-",
            "recipient": recipient or "-"}


def cases(context: Context) -> list[Case]:
    clock.set_now(clock.parse_instant(AS_OF))
    app = context.app
    client = app.test_client()
    login(client)
    peer = peer_app(app)
    peer_client = peer.test_client()
    sample = _samples()

    def view(endpoint):
        return _view(app, endpoint)

    pages = [
        # (label, endpoint, parameters of both, or (project's, peer's)); a filter is
        # ("filter", label, value), a sort ("sort", column), resolved on each side's view.
        ("candidatures", "candidature", {}),
        ("candidatures, état = en_attente_avis", "candidature",
         [("filter", "État", "en_attente_avis")]),
        ("candidatures, département = 33", "candidature",
         [("filter", "Département", "33")]),
        ("candidatures, dispositif = HSP", "candidature", [("filter", "Dispositif", "HSP")]),
        ("candidatures, état + département", "candidature",
         [("filter", "État", "retenue"), ("filter", "Département", "64")]),
        ("candidatures, tri date de pré-inscription", "candidature",
         [("sort", "submitted_at")]),
        ("candidatures, page 500", "candidature",
         (cursor_at(view("candidature"), 500), {"page": 500})),
        ("candidatures, page 5 000", "candidature",
         (cursor_at(view("candidature"), 5000), {"page": 5000})),
        ("candidatures, 100 par page", "candidature", {"page_size": 100}),
        ("candidatures, page 500, 100 par page", "candidature",
         ({**cursor_at(view("candidature"), 500, 100), "page_size": 100},
          {"page": 500, "page_size": 100})),
        ("candidatures, recherche « martin »", "candidature", {"search": "martin"}),
        (f"candidatures, recherche nom rare « {sample['rare']} »", "candidature",
         {"search": sample["rare"]}),
        ("candidatures, recherche référence", "candidature", {"search": sample["reference"]}),
        ("sessions", "session", {}),
        ("sessions, état = annulee", "session", [("filter", "État", "annulee")]),
        ("sessions, département = 87", "session", [("filter", "Département", "87")]),
        ("sessions, tri date de début", "session", [("sort", "date_debut")]),
        ("sessions, page 500", "session", (cursor_at(view("session"), 500), {"page": 500})),
        ("formations", "formation", {}),
        ("formations, état = en_attente_moderation", "formation",
         [("filter", "État", "en_attente_moderation")]),
        ("formations, recherche « cuisine »", "formation", {"search": "cuisine"}),
        ("formations, page 500", "formation",
         (cursor_at(view("formation"), 500), {"page": 500})),
        ("candidats", "candidate", {}),
        ("candidats, recherche « martin »", "candidate", {"search": "martin"}),
        ("candidats, recherche courriel", "candidate", {"search": sample["email"]}),
        ("candidats, page 500", "candidate",
         (cursor_at(view("candidate"), 500), {"page": 500})),
        ("journal des transitions", "transitionlog", {}),
        ("journal des transitions, page 500", "transitionlog",
         (cursor_at(view("transitionlog"), 500), {"page": 500})),
        ("courriels", "outboundmessage", {}),
        ("courriels, recherche destinataire", "outboundmessage",
         {"search": sample["recipient"]}),
    ]
    result = []
    for label, endpoint, parameters in pages:
        ours, theirs = parameters if isinstance(parameters, tuple) else (parameters,
                                                                          parameters)
        project_url = _url(f"/admin/{endpoint}/", view(endpoint), ours)
        peer_url = _url(f"/pair/pair_{endpoint}/", _view(peer, f"pair_{endpoint}"), theirs)
        result.append(Case(GROUP, label, _get(client, project_url),
                           _get(peer_client, peer_url), target_ms=TARGET_MS,
                           peer_name=PEER_NAME))
    return result


def _url(base: str, view, parameters) -> str:
    if isinstance(parameters, list):  # filters and sorts, resolved on this view
        resolved, position = {}, 0
        for kind, *spec in parameters:
            if kind == "filter":
                resolved.update(filter_arg(view, *spec, position=position))
                position += 1
            else:
                resolved.update(sort_arg(view, *spec))
        parameters = resolved
    return base + (f"?{urlencode(parameters)}" if parameters else "")


def _get(client, url: str):
    def call():
        response = client.get(url)
        if response.status_code != 200 or b"alert-danger" in response.data:
            raise RuntimeError(f"{url} : HTTP {response.status_code}")
        return response
    return call

"""The benchmark of the catalogue search (issue 13): ``search_sessions`` with its facets
and total, for each query of the prescribers' mix, beside the naive peer — the same
tables joined, the same filters, each keyword as ``LIKE '%…%'``, a count and a page by
OFFSET/LIMIT (no facets) — and the search page rendered over HTTP for a logged-in demo
prescriber (Flask test client). Targets: 50 ms p95 on PostgreSQL, 100 ms on SQLite, the
page 20 ms more."""
from __future__ import annotations

import re

from sqlalchemy import and_, func, or_, select

from backoffice import clock, search
from backoffice.bench import Case, Context
from backoffice.demo import DEMO_PASSWORD
from backoffice.extensions import db
from backoffice.models import Commune, Formation, Session, SessionState

GROUP = "Recherche de l'offre (search_sessions, facettes et total compris)"
# The instant the demo data is generated "as of": open sessions mean the same thing.
DEMO_INSTANT = "2026-11-23T10:30"
PRESCRIBER = "prescripteur1@demo.fr"
PEER = "LIKE '%…%', jointure, count + OFFSET/LIMIT"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def naive(criteria: search.Criteria, page: int = 1, per_page: int = 20):
    """What a naive search does: join, filter, LIKE each word, count, OFFSET/LIMIT."""
    today = clock.today()
    conditions = [Formation.state.in_(search.SEARCHABLE_FORMATION_STATES),
                  Session.state == SessionState.ACTIVE]
    if not criteria.include_ended:
        conditions.append(Session.date_fin >= today)
    if criteria.exclude_started:
        conditions.append(Session.date_debut > today)
    raw = criteria.q.strip()
    if raw:
        document = func.lower(func.coalesce(Formation.intitule, "") + " "
                              + func.coalesce(Formation.objectif, "") + " "
                              + func.coalesce(Formation.programme, ""))
        conditions.append(or_(
            Session.reference == raw, Formation.reference == raw,
            Formation.numero_marche == raw,
            and_(*[document.like(f"%{word}%") for word in raw.lower().split()])))
    if criteria.dispositif:
        conditions.append(Formation.dispositif == criteria.dispositif)
    if criteria.departements:
        conditions.append(Commune.departement.in_(criteria.departements))
    if criteria.communes:
        conditions.append(or_(Commune.code_postal.in_(criteria.communes), func.lower(
            Commune.nom).in_([c.lower() for c in criteria.communes])))
    if criteria.organismes:
        conditions.append(func.coalesce(Session.organisme_formateur_id,
                                        Formation.organisme_formateur_id,
                                        Formation.structure_id).in_(criteria.organismes))

    def joined(*columns):
        return (select(*columns).select_from(Session).join(Formation)
                .outerjoin(Commune, Commune.id == Session.commune_id).where(*conditions))

    total = db.session.scalar(joined(func.count(Session.id)))
    ids = db.session.scalars(joined(Session.id).order_by(Session.date_debut, Session.reference)
                             .offset((page - 1) * per_page).limit(per_page)).all()
    db.session.rollback()
    return total, ids


def project(criteria: search.Criteria, page: int = 1):
    result = search.search_sessions(criteria, page=page, per_page=20)
    db.session.rollback()
    return result


def _samples() -> dict:
    """Values of the mix taken from the data: the 3 organismes with most open sessions,
    a session reference, a rare word."""
    rows = search.SESSIONS.c
    today = clock.today()
    organismes = db.session.scalars(
        select(rows.organisme_id).where(rows.date_fin >= today).group_by(rows.organisme_id)
        .order_by(func.count().desc(), rows.organisme_id).limit(3)).all()
    reference = db.session.scalar(
        select(rows.reference).where(rows.date_fin >= today).order_by(rows.session_id)
        .offset(db.session.scalar(select(func.count()).where(rows.date_fin >= today)) // 2)
        .limit(1)) or "00000000"
    return {"organismes": list(organismes), "reference": reference}


def _mix(samples: dict) -> list[tuple[str, search.Criteria, int]]:
    c = search.Criteria
    return [
        ("aucun critère (sessions ouvertes)", c(), 1),
        ("un mot courant « vente »", c(q="vente"), 1),
        ("deux mots « vente conseil »", c(q="vente conseil"), 1),
        ("5 départements", c(departements=["16", "17", "19", "23", "24"]), 1),
        ("3 communes", c(communes=["Bordeaux", "87000", "Poitiers"]), 1),
        ("3 organismes", c(organismes=samples["organismes"]), 1),
        ("dispositif HSP", c(dispositif="HSP"), 1),
        ("numéro de session", c(q=samples["reference"]), 1),
        ("page 200", c(), 200),
        ("mot accentué « hôtellerie »", c(q="hôtellerie"), 1),
        ("mot rare « chaudronnier »", c(q="chaudronnier"), 1),
        ("« vente », terminées comprises", c(q="vente", include_ended=True), 1),
        ("« vente », page 20", c(q="vente"), 20),
    ]


def _logged_in_client(app):
    client = app.test_client()
    page = client.get("/connexion")
    match = CSRF.search(page.text)
    client.post("/connexion", data={"email": PRESCRIBER, "password": DEMO_PASSWORD,
                                    "csrf_token": match.group(1) if match else ""})
    return client


def _page(client, query: dict):
    def get():
        response = client.get("/prescription/recherche", query_string=query)
        assert response.status_code == 200, response.status_code
        return response
    return get


def cases(context: Context) -> list[Case]:
    clock.set_now(clock.parse_instant(DEMO_INSTANT))
    target = 50 if context.database == "postgresql" else 100
    samples = _samples()
    measured = [Case(GROUP, name, lambda c=criteria, p=page: project(c, p),
                     peer=lambda c=criteria, p=page: naive(c, p), target_ms=target,
                     peer_name=PEER)
                for name, criteria, page in _mix(samples)]
    client = _logged_in_client(context.app)
    measured += [
        Case(GROUP, f"page /prescription/recherche (HTTP) : {name}", _page(client, query),
             target_ms=target + 20)
        for name, query in (("aucun critère", {}), ("« vente »", {"q": "vente"}),
                            ("« vente », page 20", {"q": "vente", "page": "20"}))]
    return measured

"""Benchmark of the Flask-Admin list pages on a database loaded with demo data.

Usage::

    backoffice demo-data --scale 25            # once, on the database to measure
    python benchmarks/admin_lists.py [DATABASE_URL] [--repeat 5] [--only candidature]

DATABASE_URL defaults to the environment variable of the same name (else the application's
default SQLite file). The script logs in as the demo admin through the login form (Flask
test client, CSRF disabled for the benchmark client), requests each page once to warm up,
then ``--repeat`` times, and prints the median and maximum time and the number of SQL
queries of each page. Filter and sort parameters are built from the views themselves
(``flt0_<index>=value``, ``sort=<column index>``), as the list page's own links are.

Mesure des pages de liste de l'administration : temps médian et maximal, nombre de
requêtes SQL par page.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

DEMO_ADMIN = "admin@demo.fr"


def _view(app, endpoint: str):
    for admin in app.extensions["admin"]:
        for view in admin._views:
            if view.endpoint == endpoint:
                return view
    raise LookupError(f"aucune vue d'administration « {endpoint} »")


def filter_arg(app, endpoint: str, label: str, value: str, position: int = 0) -> dict:
    """``{"flt<position>_<index>": value}`` for the "equals" filter labelled ``label``."""
    from flask_admin.contrib.sqla.filters import FilterEqual

    view = _view(app, endpoint)
    for index, flt in enumerate(view._filters or ()):
        if flt.name == label and type(flt) is FilterEqual:
            return {f"flt{position}_{view.get_filter_arg(index, flt)}": value}
    raise LookupError(f"{endpoint} : pas de filtre « égal à » nommé « {label} »")


def sort_arg(app, endpoint: str, column: str, desc: bool = True) -> dict:
    view = _view(app, endpoint)
    for index, (name, _label) in enumerate(view._list_columns):
        if name == column:
            return {"sort": index, **({"desc": 1} if desc else {})}
    raise LookupError(f"{endpoint} : pas de colonne triable « {column} »")


def pages(app) -> list[tuple[str, str]]:
    """(label, URL) of every page measured."""
    def url(endpoint, *args):
        params = {}
        for arg in args:
            params.update(arg)
        query = urlencode(params)
        return f"/admin/{endpoint}/" + (f"?{query}" if query else "")

    f, s = filter_arg, sort_arg
    return [
        ("candidatures", url("candidature")),
        ("candidatures, état = en_attente_avis",
         url("candidature", f(app, "candidature", "État", "en_attente_avis"))),
        ("candidatures, département = 33",
         url("candidature", f(app, "candidature", "Département", "33"))),
        ("candidatures, dispositif = HSP",
         url("candidature", f(app, "candidature", "Dispositif", "HSP"))),
        ("candidatures, état + département",
         url("candidature", f(app, "candidature", "État", "retenue"),
             f(app, "candidature", "Département", "64", position=1))),
        ("candidatures, tri date de pré-inscription",
         url("candidature", s(app, "candidature", "submitted_at"))),
        ("candidatures, page 500", url("candidature", {"page": 500})),
        ("candidatures, recherche « martin »", url("candidature", {"search": "martin"})),
        ("candidatures, 100 par page", url("candidature", {"page_size": 100})),
        ("sessions", url("session")),
        ("sessions, état = annulee", url("session", f(app, "session", "État", "annulee"))),
        ("sessions, département = 87",
         url("session", f(app, "session", "Département", "87"))),
        ("sessions, tri date de début", url("session", s(app, "session", "date_debut"))),
        ("sessions, page 500", url("session", {"page": 500})),
        ("formations", url("formation")),
        ("formations, état = en_attente_moderation",
         url("formation", f(app, "formation", "État", "en_attente_moderation"))),
        ("formations, recherche « cuisine »", url("formation", {"search": "cuisine"})),
        ("formations, page 500", url("formation", {"page": 500})),
        ("candidats", url("candidate")),
        ("candidats, recherche « martin »", url("candidate", {"search": "martin"})),
        ("candidats, page 500", url("candidate", {"page": 500})),
        ("journal des transitions", url("transitionlog")),
        ("journal des transitions, page 500", url("transitionlog", {"page": 500})),
        ("courriels", url("outboundmessage")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mesure des listes de l'administration.")
    parser.add_argument("database_url", nargs="?", default=os.environ.get("DATABASE_URL"),
                        help="URL de la base (défaut : variable DATABASE_URL)")
    parser.add_argument("--repeat", type=int, default=5, help="mesures par page (défaut 5)")
    parser.add_argument("--only", default=None,
                        help="ne mesurer que les pages dont l'URL contient ce texte")
    args = parser.parse_args(argv)

    from backoffice import create_app
    from backoffice.demo import DEMO_PASSWORD
    from backoffice.extensions import db

    config = {"WTF_CSRF_ENABLED": False}
    if args.database_url:
        config["SQLALCHEMY_DATABASE_URI"] = args.database_url
    app = create_app(config)
    queries = [0]

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute",
                     lambda *_args, **_kwargs: queries.__setitem__(0, queries[0] + 1))
        url = db.engine.url.render_as_string(hide_password=True)
        targets = [(label, target) for label, target in pages(app)
                   if not args.only or args.only in target]

    client = app.test_client()
    response = client.post("/connexion", data={"email": DEMO_ADMIN, "password": DEMO_PASSWORD})
    if response.status_code != 302 or "/connexion" in response.headers.get("Location", ""):
        print(f"Connexion impossible en tant que {DEMO_ADMIN} (HTTP {response.status_code}) : "
              "la base contient-elle les données de démonstration ?", file=sys.stderr)
        return 1

    print(f"Base : {url}")
    print(f"{args.repeat} mesures par page après un premier appel (préchauffage).\n")
    header = (f"{'Page':<44} {'médiane ms':>10} {'max ms':>8} {'SQL':>4} {'HTTP':>4} "
              f"{'Ko':>5}  URL")
    print(header)
    print("-" * len(header))
    failures = 0
    for label, target in targets:
        client.get(target)  # warm-up (caches, first compilation of the statements)
        timings, statuses = [], set()
        for _ in range(args.repeat):
            queries[0] = 0
            started = time.perf_counter()
            response = client.get(target)
            timings.append((time.perf_counter() - started) * 1000)
            statuses.add(response.status_code)
            count = queries[0]
            body = response.data
        if statuses != {200} or b"alert-danger" in body:
            failures += 1
        print(f"{label:<44} {statistics.median(timings):>10.1f} {max(timings):>8.1f} "
              f"{count:>4} {'/'.join(map(str, sorted(statuses))):>4} {len(body) // 1024:>5}  "
              f"{target}")
    if failures:
        print(f"\n{failures} page(s) en erreur ou avec un message d'erreur.", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

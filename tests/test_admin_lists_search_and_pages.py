"""Admin lists at scale: the text search finds what a moderator expects (beginnings of
names, accents, case and hyphens ignored; an exact reference or e-mail) through word
indexes that follow every write, the same rows on both databases; pages go by key
(« Précédent / Suivant »), with as many queries for page 1 as for a deep page, for 20 rows
as for 100."""
from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import text

from backoffice import bench, clock
from backoffice.models import TransitionLog
from tests.factories import (create_candidate, create_candidature, create_commune, create_formation,
                             create_member, create_session, create_structure)

NIR = "295057512345678"
DETAILS_ID = re.compile(r"details/\?id=(\d+)")


def _ids(page) -> list[int]:
    assert page.status_code == 200
    seen = []
    for match in DETAILS_ID.finditer(page.text):
        if int(match.group(1)) not in seen:
            seen.append(int(match.group(1)))
    return seen


def _found(client, endpoint: str, search: str) -> list[int]:
    return _ids(client.get(f"/admin/{endpoint}/", query_string={"search": search}))


def _link(page, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', page.text)
    return html.unescape(match.group(1)) if match else None


@pytest.fixture
def people(db):
    """Candidates with the names a moderator searches, each with one candidature."""
    session = create_session(reference="77700001")
    structure = create_structure()
    prescriber = create_member(structure, profile_prescripteur="prescripteur_n2")
    names = {
        "dupont_leger": ("Dupont-Léger", "Élodie"), "le_gall": ("Le Gall", "Anaïs"),
        "almeida": ("D'Almeida", "José"), "martin": ("Martin", "Paul"),
        "martinez": ("Martinez", "Inès"), "saint_martin": ("Saint-Martin", "Jean-Noël"),
        "lamartine": ("Lamartine", "Alphonse"), "oeuvray": ("Œuvray", "Chloé"),
    }
    found = {}
    for key, (nom, prenom) in names.items():
        candidate = create_candidate(nom=nom, prenom=prenom, email=f"{key}@exemple.fr")
        if key == "martin":
            candidate.nir = NIR
            candidate.identifiant_france_travail = "4053655G"
        candidature = create_candidature(candidate=candidate, session=session,
                                         prescriber_structure=structure,
                                         prescriber_user=prescriber,
                                         reference=f"2026{len(found):08d}")
        found[key] = (candidate, candidature)
    db.session.commit()
    return found


@pytest.mark.parametrize("search, expected", [
    ("dupont", {"dupont_leger"}), ("LEGER", {"dupont_leger"}), ("léger", {"dupont_leger"}),
    ("Dupont-Léger", {"dupont_leger"}), ("dupontleger", {"dupont_leger"}),
    ("dup lég", {"dupont_leger"}), ("elodie", {"dupont_leger"}),
    ("martin", {"martin", "martinez", "saint_martin"}), ("saint-mar", {"saint_martin"}),
    ("jean noel", {"saint_martin"}), ("d'almeida", {"almeida"}), ("almeida", {"almeida"}),
    ("dalmeida", {"almeida"}), ("gall anais", {"le_gall"}), ("oeuvray", {"oeuvray"}),
    ("œuv", {"oeuvray"}), ("MARTINE", {"martinez"}), ("martinot", set()), ("artin", set()), ("zorglub", set()),
])
def test_a_name_search_finds_the_beginnings_of_names(admin_client, people, search, expected):
    """Every word typed begins a word of the surname or first name (accents, case,
    hyphens, apostrophes ignored; the name without its separators counts as a word);
    the same rows on SQLite and PostgreSQL, in the candidates' and candidatures' lists."""
    candidates = {people[key][0].id for key in expected}
    candidatures = {people[key][1].id for key in expected}
    assert set(_found(admin_client, "candidate", search)) == candidates
    assert set(_found(admin_client, "candidature", search)) == candidatures


def test_references_identifiers_and_emails_are_found_exactly(admin_client, people):
    martin, martin_candidature = people["martin"]
    assert _found(admin_client, "candidature", martin_candidature.reference) == [
        martin_candidature.id]
    assert _found(admin_client, "candidature", martin_candidature.reference[:-1]) == []
    everyone = {candidature.id for _, candidature in people.values()}
    assert set(_found(admin_client, "candidature", "77700001")) == everyone  # the session
    assert _found(admin_client, "candidate", "4053655G") == [martin.id]
    assert _found(admin_client, "candidate", "Martin@Exemple.fr") == [martin.id]
    assert _found(admin_client, "candidate", "martin@exemple") == []


def test_the_nir_is_never_searched(admin_client, people):
    assert _found(admin_client, "candidate", NIR) == []
    assert _found(admin_client, "candidature", NIR) == []


def test_the_word_indexes_follow_inserts_updates_and_deletes(admin_client, db):
    """ORM writes and raw SQL alike (triggers on SQLite, an expression index on
    PostgreSQL)."""
    candidate = create_candidate(nom="Zorglub", prenom="Léon")
    db.session.commit()
    assert _found(admin_client, "candidate", "zorg") == [candidate.id]
    candidate.nom = "Quibble"
    db.session.commit()
    assert _found(admin_client, "candidate", "zorg") == []
    assert _found(admin_client, "candidate", "quib leon") == [candidate.id]
    db.session.execute(text("UPDATE candidate SET nom = 'Vénus-Ouzo', nom_normalise = "
                            "'venusouzo' WHERE id = :id"), {"id": candidate.id})
    db.session.commit()
    assert _found(admin_client, "candidate", "quib") == []
    assert _found(admin_client, "candidate", "ouzo") == [candidate.id]
    db.session.execute(text("DELETE FROM candidate WHERE id = :id"), {"id": candidate.id})
    db.session.commit()
    assert _found(admin_client, "candidate", "ouzo") == []

    formation = create_formation(intitule="Cuisinier en restauration collective")
    db.session.commit()
    assert _found(admin_client, "formation", "cuisi collect") == [formation.id]
    formation.intitule = "Boulanger"
    db.session.commit()
    assert _found(admin_client, "formation", "cuisi") == []
    assert _found(admin_client, "formation", "boul") == [formation.id]


@pytest.fixture
def candidatures(db):
    """45 candidatures; a third not submitted yet (no date), the others on few dates."""
    session, structure = create_session(), create_structure()
    prescriber = create_member(structure, profile_prescripteur="prescripteur_n2")
    made = []
    for n in range(45):
        submitted = None if n % 3 == 0 else clock.now() - dt.timedelta(days=n % 4)
        made.append(create_candidature(
            candidate=create_candidate(), session=session, prescriber_structure=structure,
            prescriber_user=prescriber, submitted_at=submitted,
            state="en_attente_avis" if submitted else "brouillon",
            consentement=submitted is not None))
    db.session.commit()
    return made


def _walk(client, url: str) -> list[list[int]]:
    """The pages met by following « Suivant » from ``url``."""
    pages = []
    while url:
        page = client.get(url)
        pages.append(_ids(page))
        url = _link(page, "next")
        assert len(pages) < 20
    return pages


def test_the_pager_goes_forth_and_back_by_key(admin_client, candidatures):
    pages = _walk(admin_client, "/admin/candidature/")
    assert [len(p) for p in pages] == [20, 20, 5]
    ids = [i for p in pages for i in p]
    assert ids == sorted((c.id for c in candidatures), reverse=True)
    first = admin_client.get("/admin/candidature/")
    assert _link(first, "prev") is None and _link(first, "first") is None
    second = admin_client.get(_link(first, "next"))
    third = admin_client.get(_link(second, "next"))
    assert _link(third, "next") is None
    back = admin_client.get(_link(third, "prev"))
    assert _ids(back) == pages[1]
    assert _ids(admin_client.get(_link(back, "prev"))) == pages[0]
    assert _ids(admin_client.get(_link(third, "first"))) == pages[0]


def test_the_pager_follows_a_sort_on_a_column_with_nulls_and_ties(admin_client,
                                                                  candidatures):
    view = next(v for v in admin_client.application.extensions["admin"][0]._views
                if v.endpoint == "candidature")
    sort = next(i for i, (name, _) in enumerate(view._list_columns) if name == "submitted_at")
    for desc in ("1", None):
        url = f"/admin/candidature/?sort={sort}" + (f"&desc={desc}" if desc else "")
        pages = _walk(admin_client, url)
        ids = [i for p in pages for i in p]
        assert sorted(ids) == sorted(c.id for c in candidatures), desc
        by_id = {c.id: c.submitted_at for c in candidatures}
        dated = [by_id[i] for i in ids if by_id[i] is not None]
        assert dated == sorted(dated, reverse=bool(desc))
        back = admin_client.get(_link(admin_client.get(_walk_to(admin_client, url, 2)),
                                      "prev"))
        assert _ids(back) == pages[1]


def _walk_to(client, url: str, clicks: int) -> str:
    for _ in range(clicks):
        url = _link(client.get(url), "next")
    return url


def _count_queries(client, db, url) -> int:
    with bench.QueryCounter(db.engine) as counter:
        assert client.get(url).status_code == 200
    return counter.count


@pytest.mark.parametrize("endpoint", ["candidature", "transitionlog"])
def test_queries_per_page_do_not_depend_on_the_page_or_its_size(admin_client, db,
                                                                candidatures, endpoint):
    if endpoint == "transitionlog":
        for candidature in candidatures * 3:
            db.session.add(TransitionLog(object_type="candidature",
                                         object_id=candidature.id, transition="soumettre",
                                         from_state="brouillon", to_state="en_attente_avis"))
        db.session.commit()
    base = f"/admin/{endpoint}/"
    deep = _walk_to(admin_client, base, 2)  # (and the first requests of the session)
    first = _count_queries(admin_client, db, base)
    assert deep
    assert _count_queries(admin_client, db, deep) == first
    hundred = f"{base}?page_size=100"
    assert _count_queries(admin_client, db, hundred) == first
    assert len(_ids(admin_client.get(hundred))) > 20


@pytest.mark.parametrize("cursor", ["abc", "W10", "WzEsMiwzXQ", "Wzk5OTk5OTk5OTk5OTksbnVsbF0",
                                    "WyJ4IixudWxsXQ", "%C3%A9t%C3%A9", "Wy0xLG51bGxd"])
def test_a_cursor_that_is_not_one_gives_the_first_page(admin_client, candidatures, cursor):
    for url in (f"/admin/candidature/?apres={cursor}",
                f"/admin/candidature/?avant={cursor}&sort=6&desc=1",
                f"/admin/transitionlog/?apres={cursor}", f"/admin/session/?avant={cursor}"):
        page = admin_client.get(url)
        assert page.status_code == 200, url
    page = admin_client.get(f"/admin/candidature/?apres={cursor}")
    assert _ids(page)[:20] == sorted((c.id for c in candidatures), reverse=True)[:20]


def test_the_admin_lists_benchmark_runs(app, db):
    """At a tiny scale (no time asserted): every case of the group runs and is printed."""
    from backoffice import demo

    clock.set_now(clock.parse_instant("2026-11-23T10:30"))
    demo.generate(scale=0.01, seed=20261122)
    db.session.remove()
    from backoffice.bench import admin_lists

    lines: list[str] = []
    try:
        figures = bench.run(bench.Context(app=app, scale=0.01,
                                          database=db.engine.dialect.name, repeat=1),
                            only="admin_lists", out=lines.append)
    finally:
        admin_lists.close_peers()
    output = "\n".join(lines)
    assert "### Listes de l'administration" in output
    names = [figure.case.name for figure in figures]
    for name in ("candidatures, page 5 000", "candidatures, recherche référence",
                 "candidats, recherche courriel", "candidatures, 100 par page"):
        assert name in names and f"| {name} |" in output
    assert all(figure.peer and figure.project for figure in figures)
    by_name = {figure.case.name: figure.queries for figure in figures}
    assert by_name["candidatures"] == by_name["candidatures, page 5 000"] \
        == by_name["candidatures, 100 par page"]


def test_filters_on_related_rows_are_correlated_exists_not_joins(admin_client, db):
    """« Département » and « Dispositif » of the candidatures' list test the candidature's
    session's commune and formation: the right rows, combined with a state filter, through
    an EXISTS per row rather than joins of the list's query with commune and formation."""
    from flask_admin.contrib.sqla.filters import FilterEqual
    from sqlalchemy import event

    from backoffice.extensions import db as database
    from backoffice.models import CandidatureState

    pau = create_commune(departement="64", code_postal="64000", nom="Pau")
    hsp = create_session(commune=pau, formation=create_formation(dispositif="HSP"))
    other = create_session(formation=create_formation(dispositif="conventionne_region"))
    expected = {create_candidature(session=hsp, state=CandidatureState.RETENUE).id}
    create_candidature(session=hsp, state=CandidatureState.EN_ATTENTE_AVIS)
    create_candidature(session=other, state=CandidatureState.RETENUE)
    db.session.commit()
    view = next(v for v in admin_client.application.extensions["admin"][0]._views
                if getattr(v, "endpoint", None) == "candidature")

    def arg(label, value, position):
        for index, flt in enumerate(view._filters):
            if flt.name == label and type(flt) is FilterEqual:
                return {f"flt{position}_{view.get_filter_arg(index, flt)}": value}

    statements = []

    def grab(_conn, _cursor, statement, *_args):
        if "FROM candidature" in statement:
            statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", grab)
    try:
        for query in ({**arg("Département", "64", 0), **arg("État", "retenue", 1)},
                      {**arg("Dispositif", "HSP", 0), **arg("État", "retenue", 1)}):
            assert set(_ids(admin_client.get("/admin/candidature/", query_string=query))) \
                == expected
    finally:
        event.remove(database.engine, "before_cursor_execute", grab)
    listed = [s for s in statements if "LIMIT" in s]
    assert listed and all("EXISTS" in s for s in listed)
    assert not any(re.search(r"JOIN (commune|formation)\b", s) for s in listed)


def test_row_actions_drawn_once_carry_each_rows_own_id(admin_client, db):
    """The « voir / modifier / supprimer » buttons are drawn once per page and copied per
    row: each row's links and delete form name that row, and no stand-in id is left."""
    from backoffice.admin.base import DrawnOnceRowAction

    ids = [create_formation().id for _ in range(3)]
    db.session.commit()
    page = admin_client.get("/admin/formation/")
    assert page.status_code == 200 and DrawnOnceRowAction.STAND_IN not in page.text
    rows = re.findall(r"<tr>(.*?)</tr>", page.text, re.S)[1:]
    shown = []
    for row in rows:
        details = re.findall(r"details/\?id=(\d+)", row)
        edits = re.findall(r"edit/\?id=(\d+)", row)
        deleted = re.findall(r'name="id"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="id"', row)
        assert details and len(set(details)) == 1
        assert set(edits) <= set(details)
        assert {a or b for a, b in deleted} <= set(details)
        shown.append(int(details[0]))
    assert set(ids) <= set(shown)

"""Search of the offer: the one search function, on the database the suite runs on
(SQLite, then PostgreSQL in CI): the same corpus and the same queries must give the same
session ids on both, so each expectation below is checked on both databases."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, text

from backoffice import clock, search
from backoffice.extensions import db
from backoffice.models import FormationState
from tests import factories as f

MONDAY = dt.datetime(2026, 3, 9, 10, 0, tzinfo=clock.PARIS)


@pytest.fixture(autouse=True)
def frozen():
    with clock.frozen(MONDAY):
        yield


@pytest.fixture
def corpus():
    """Five searchable sessions, a draft formation and an ended session."""
    bordeaux = f.create_commune(nom="Bordeaux", code_postal="33000", departement="33")
    pau = f.create_commune(nom="Pau", code_postal="64000", departement="64")
    of_a = f.create_structure(raison_sociale="AFPA Aquitaine")
    of_b = f.create_structure(raison_sociale="INSUP")
    hotel = f.create_formation(
        structure=of_a, state=FormationState.VALIDEE, intitule="Réceptionniste en HÔTELLERIE",
        objectif="Accueillir la clientèle d'un hôtel", programme="Réservations, caisse",
        numero_marche="2026-MA-017", dispositif="conventionne_region")
    petite = f.create_formation(
        structure=of_b, state=FormationState.VALIDEE,
        intitule="CAP Accompagnant éducatif petite enfance",
        objectif="Travailler auprès des jeunes enfants", programme="Éveil, hygiène",
        dispositif="HSP")
    macon = f.create_formation(
        structure=of_a, state=FormationState.VALIDEE, intitule="Maçon du bâti ancien",
        objectif="Restaurer des œuvres de maçonnerie", programme="Chaux, pierre",
        dispositif="conventionne_region")
    draft = f.create_formation(structure=of_b, state=FormationState.BROUILLON,
                               intitule="Hôtellerie de plein air")
    s = {
        "hotel_bdx": f.create_published_session(hotel, reference="00254068", commune=bordeaux),
        "hotel_pau": f.create_published_session(hotel, commune=pau),
        "petite": f.create_published_session(
            petite, commune=pau, date_debut=clock.today() - dt.timedelta(days=10)),
        "macon": f.create_published_session(macon, commune=bordeaux),
        "ended": f.create_published_session(
            macon, commune=bordeaux, date_debut=clock.today() - dt.timedelta(days=300),
            date_fin=clock.today() - dt.timedelta(days=5)),
        "draft": f.create_published_session(draft, commune=bordeaux),
    }
    db.session.commit()
    return {"sessions": s, "formations": {"hotel": hotel, "petite": petite, "macon": macon,
                                          "draft": draft},
            "communes": {"bordeaux": bordeaux, "pau": pau}, "of": {"a": of_a, "b": of_b}}


def ids(corpus, *names):
    return sorted(corpus["sessions"][n].id for n in names)


def found(**criteria):
    result = search.search_sessions(search.Criteria(**criteria), per_page=100)
    return sorted(result.session_ids)


QUERIES = [
    # (query, expected sessions) — identical on SQLite and PostgreSQL
    ("hotellerie", ("hotel_bdx", "hotel_pau")),
    ("HÔTELLERIE", ("hotel_bdx", "hotel_pau")),
    ("Hôtel", ("hotel_bdx", "hotel_pau")),                 # the word "hôtel" in objectif
    ("hôtellerie caisse", ("hotel_bdx", "hotel_pau")),    # intitulé + programme
    ("hôtellerie maçon", ()),                              # every term must match
    ("cap petite enfance", ("petite",)),
    ("CAP AEPE", ()),                                      # words as written (guide)
    ("éducatif", ("petite",)),
    ("educatif", ("petite",)),
    ("oeuvres", ("macon",)),                               # ligature folded
    ("maçon", ("macon",)),
    ("maç", ()),                                           # no prefix match
    ("d'un hôtel", ("hotel_bdx", "hotel_pau")),            # apostrophe splits words
    ("00254068", ("hotel_bdx",)),                          # session reference
    ("2026-MA-017", ("hotel_bdx", "hotel_pau")),           # market number
    ("plein air", ()),                                     # draft formation not searchable
    ("", ("hotel_bdx", "hotel_pau", "petite", "macon")),
]


@pytest.mark.parametrize("query,expected", QUERIES)
def test_keywords_give_the_same_sessions_on_every_database(corpus, query, expected):
    """The same query finds the same sessions on SQLite (FTS5) and PostgreSQL (tsvector)."""
    assert found(q=query) == ids(corpus, *expected)


def test_formation_reference_is_found_exactly(corpus):
    reference = corpus["formations"]["macon"].reference
    assert found(q=reference) == ids(corpus, "macon")
    assert found(q=reference[:-1]) == []


def test_index_follows_changes_of_formations(corpus):
    """Renaming a formation, deleting one, publishing a draft: search sees it at once."""
    hotel = corpus["formations"]["hotel"]
    hotel.intitule = "Réceptionniste de tourisme"
    hotel.objectif = "Accueillir la clientèle"
    db.session.commit()
    assert found(q="hôtellerie") == []
    assert found(q="tourisme") == ids(corpus, "hotel_bdx", "hotel_pau")

    draft = corpus["formations"]["draft"]
    draft.state = FormationState.VALIDEE
    db.session.commit()
    assert found(q="plein air") == ids(corpus, "draft")

    db.session.execute(text("DELETE FROM entry_point"))
    db.session.execute(text("DELETE FROM session WHERE formation_id = :id"), {"id": draft.id})
    db.session.execute(text("DELETE FROM formation WHERE id = :id"), {"id": draft.id})
    db.session.commit()
    assert found(q="plein air") == []


def test_a_modified_formation_is_found_by_its_validated_text(corpus):
    macon = corpus["formations"]["macon"]
    macon.validated_snapshot = {"intitule": macon.intitule, "objectif": macon.objectif}
    macon.intitule = "Tailleur de pierre"
    macon.state = FormationState.MODIFIEE
    db.session.commit()
    assert found(q="maçon") == ids(corpus, "macon")
    assert found(q="tailleur") == []


def test_index_follows_session_changes(corpus):
    """Session data is read live: a cancelled or moved session leaves the results."""
    session = corpus["sessions"]["hotel_pau"]
    session.state = "annulee"
    db.session.commit()
    assert found(q="hotellerie") == ids(corpus, "hotel_bdx")


def test_default_dates_and_date_options(corpus):
    assert found(include_ended=True) == ids(corpus, "hotel_bdx", "hotel_pau", "petite",
                                            "macon", "ended")
    assert found(exclude_started=True) == ids(corpus, "hotel_bdx", "hotel_pau", "macon")


def test_filters(corpus):
    of_a = corpus["of"]["a"]
    assert found(dispositif="HSP") == ids(corpus, "petite")
    assert found(departements=["64"]) == ids(corpus, "hotel_pau", "petite")
    assert found(communes=["33000"]) == ids(corpus, "hotel_bdx", "macon")
    assert found(communes=["pau"]) == ids(corpus, "hotel_pau", "petite")
    assert found(organismes=[of_a.id], q="hotellerie") == ids(corpus, "hotel_bdx", "hotel_pau")


@pytest.mark.parametrize("criteria,message", [
    ({"departements": ["16", "17", "19", "23", "24", "33"]}, "au plus 5 départements"),
    ({"communes": ["a", "b", "c", "d"]}, "au plus 3 villes"),
    ({"organismes": [1, 2, 3, 4]}, "au plus 3 organismes"),
    ({"departements": ["33"], "communes": ["Pau"]}, "pas les deux"),
])
def test_limits_give_a_french_error(criteria, message):
    with pytest.raises(search.SearchError) as error:
        search.search_sessions(search.Criteria(**criteria))
    assert message in str(error.value)


def test_counts_per_filter_value_and_pagination(corpus):
    result = search.search_sessions(search.Criteria(), per_page=2, page=2)
    assert result.total == 4 and result.pages == 2 and len(result.rows) == 2
    dispositifs = {facet.value: facet.count for facet in result.facets["dispositif"]}
    assert dispositifs == {"conventionne_region": 3, "HSP": 1}
    departements = {facet.value: facet.count for facet in result.facets["departement"]}
    assert departements == {"33": 2, "64": 2}
    # A facet's counts ignore its own filter: the other values stay visible.
    filtered = search.search_sessions(search.Criteria(dispositif="HSP"))
    assert {x.value: x.count for x in filtered.facets["dispositif"]} == dispositifs
    assert {x.value: x.count for x in filtered.facets["departement"]} == {"64": 1}


def test_places_and_next_entry_point(corpus):
    session = corpus["sessions"]["petite"]
    point = f.create_entry_point(session=session, date_entree=clock.today() + dt.timedelta(days=7),
                                 places=14)
    f.create_entry_point(session=session, date_entree=clock.today() + dt.timedelta(days=60),
                         places=14)
    for _ in range(2):
        f.create_candidature(session=session, entry_point=point)
    db.session.commit()
    row = next(r for r in search.search_sessions(search.Criteria(q="enfance")).rows)
    assert (row.next_entry, row.candidatures, row.places) == (point.date_entree, 2, 14)


def test_the_keyword_index_is_a_real_full_text_index(dialect):
    """FTS5 virtual table on SQLite, a GIN index on a tsvector on PostgreSQL."""
    if dialect == "postgresql":
        definition = db.session.scalar(text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_formation_search_document'"))
        assert "gin" in definition.lower()
    else:
        sql = db.session.scalar(text(
            "SELECT sql FROM sqlite_master WHERE name = 'formation_search'"))
        assert "fts5" in sql.lower()


def test_postgresql_words_table_follows_the_documents(dialect, corpus):
    """PostgreSQL reads a keyword's formations from ``formation_search_term`` (an index
    alone): it holds each document's words, after an insert, a change of text and a
    deletion, and two words find the formations holding both."""
    if dialect != "postgresql":
        pytest.skip("SQLite: the FTS5 table gives the ids itself")

    def words(formation):
        return set(db.session.scalars(text(
            "SELECT term FROM formation_search_term WHERE formation_id = :id"
        ).bindparams(id=formation.id)))

    def documents(formation):
        return set(db.session.scalar(text(
            "SELECT tsvector_to_array(document) FROM formation_search WHERE formation_id = :id"
        ).bindparams(id=formation.id)))

    macon = corpus["formations"]["macon"]
    assert {"macon", "bati", "ancien", "oeuvres", "chaux"} <= words(macon) == documents(macon)
    macon.programme = "Chaux, pierre sèche, torchis"
    db.session.commit()
    assert "torchis" in words(macon) and words(macon) == documents(macon)
    found = search.search_sessions(search.Criteria(q="Torchis chaux"))
    assert {row.session.formation_id for row in found.rows} == {macon.id}
    assert search.search_sessions(search.Criteria(q="torchis hôtel")).total == 0
    draft = corpus["formations"]["draft"]
    db.session.delete(corpus["sessions"]["draft"])
    db.session.delete(draft)
    db.session.commit()
    assert not db.session.scalar(text(
        "SELECT count(*) FROM formation_search_term WHERE formation_id = :id"
    ).bindparams(id=draft.id))


def test_organisme_facet_counters_follow_every_change(corpus):
    """Without keyword nor other filter the organisme facet reads counters kept by
    triggers: after sessions are added, cancelled, moved to another organisme and a
    formation leaves the validated states, it still equals a count of the sessions."""
    from sqlalchemy import func, select

    from backoffice.models import Formation, Session, SessionState

    def counted(include_ended):
        condition = [Session.state == SessionState.ACTIVE,
                     Formation.state.in_(search.SEARCHABLE_FORMATION_STATES)]
        if not include_ended:
            condition.append(Session.date_fin >= clock.today())
        organisme = func.coalesce(Session.organisme_formateur_id,
                                  Formation.organisme_formateur_id, Formation.structure_id)
        return {str(o): n for o, n in db.session.execute(
            select(organisme, func.count()).join(Formation).where(*condition)
            .group_by(organisme))}

    def facet(include_ended):
        result = search.search_sessions(search.Criteria(include_ended=include_ended))
        return {item.value: item.count for item in result.facets["organisme"]}

    sessions, formations = corpus["sessions"], corpus["formations"]
    of_c = f.create_structure(raison_sociale="GRETA Sud Aquitaine")
    f.create_published_session(formations["macon"], organisme_formateur=of_c)
    f.create_published_session(formations["petite"])
    sessions["hotel_pau"].state = SessionState.ANNULEE
    sessions["macon"].organisme_formateur = of_c
    db.session.commit()
    for include_ended in (False, True):
        assert facet(include_ended) == counted(include_ended)
    assert facet(False)[str(of_c.id)] == 2
    formations["macon"].state = FormationState.ARCHIVEE
    db.session.commit()
    for include_ended in (False, True):
        assert facet(include_ended) == counted(include_ended)
    assert str(of_c.id) not in facet(True)


# -- the prescribers' mix (issue 13): the same page, total and facets on both databases ----
def _mix(corpus):
    of_a, of_b = corpus["of"]["a"].id, corpus["of"]["b"].id
    every = {"dispositif": [("HSP", 1), ("conventionne_region", 3)],
             "departement": [("33", 2), ("64", 2)], "organisme": [(of_a, 3), (of_b, 1)]}
    hotel = {"dispositif": [("conventionne_region", 2)],
             "departement": [("33", 1), ("64", 1)], "organisme": [(of_a, 2)]}

    def one(dispositif, departement, organisme):
        return {"dispositif": [(dispositif, 1)], "departement": [(departement, 1)],
                "organisme": [(organisme, 1)]}

    return [
        # (criteria, page, per_page, total, the page's sessions in order, facets)
        ({}, 1, 20, 4, ("petite", "hotel_bdx", "hotel_pau", "macon"), every),
        ({"q": "hôtellerie"}, 1, 20, 2, ("hotel_bdx", "hotel_pau"), hotel),
        ({"q": "hôtellerie caisse"}, 1, 20, 2, ("hotel_bdx", "hotel_pau"), hotel),
        ({"departements": ["16", "17", "19", "23", "33"]}, 1, 20, 2, ("hotel_bdx", "macon"),
         {"dispositif": [("conventionne_region", 2)], "departement": every["departement"],
          "organisme": [(of_a, 2)]}),
        ({"communes": ["pau", "47000", "Limoges"]}, 1, 20, 2, ("petite", "hotel_pau"),
         {"dispositif": [("HSP", 1), ("conventionne_region", 1)],
          "departement": every["departement"], "organisme": [(of_a, 1), (of_b, 1)]}),
        ({"organismes": [of_b, of_b + 1000, of_b + 1001]}, 1, 20, 1, ("petite",),
         {**one("HSP", "64", of_b), "organisme": every["organisme"]}),
        ({"dispositif": "HSP"}, 1, 20, 1, ("petite",),
         {**one("HSP", "64", of_b), "dispositif": every["dispositif"]}),
        ({"q": "00254068"}, 1, 20, 1, ("hotel_bdx",), one("conventionne_region", "33", of_a)),
        ({}, 3, 1, 4, ("hotel_pau",), every),                        # deep page
        ({}, 9, 1, 4, ("macon",), every),                            # beyond: the last page
        ({"q": "ÉDUCATIF"}, 1, 20, 1, ("petite",), one("HSP", "64", of_b)),   # accented word
        ({"q": "chaux"}, 1, 20, 1, ("macon",), one("conventionne_region", "33", of_a)),  # rare
        ({"q": "maçon", "include_ended": True}, 1, 20, 2, ("ended", "macon"),
         {"dispositif": [("conventionne_region", 2)], "departement": [("33", 2)],
          "organisme": [(of_a, 2)]}),
        ({"q": "hôtellerie"}, 2, 1, 2, ("hotel_pau",), hotel),       # keyword, deep page
        ({"q": "hôtellerie", "organismes": [of_a], "departements": ["64"]}, 1, 20, 1,
         ("hotel_pau",), {"dispositif": [("conventionne_region", 1)],
                          "departement": [("33", 1), ("64", 1)], "organisme": [(of_a, 1)]}),
    ]


def test_the_mix_of_queries_gives_the_same_page_total_and_facets_on_every_database(corpus):
    """The queries of the benchmark's mix (issue 13) on the corpus: the page's sessions in
    order, the total and each facet's values and counts in order, on SQLite and
    PostgreSQL alike (a facet's counts ignore its own filter)."""
    names = {session.id: name for name, session in corpus["sessions"].items()}
    for criteria, page, per_page, total, rows, facets in _mix(corpus):
        result = search.search_sessions(search.Criteria(**criteria), page=page,
                                        per_page=per_page)
        got = {name: [(int(f.value) if name == "organisme" else f.value, f.count)
                      for f in result.facets[name]] for name in result.facets}
        assert (result.total, tuple(names[i] for i in result.session_ids), got) == \
            (total, rows, facets), criteria


def test_a_search_sends_the_same_few_sql_statements_whatever_the_criteria(corpus):
    """The total, the facets and the page in one to five statements, the page's rows in
    three: a search no longer recounts the join once per facet (issue 13: 9 to 11)."""
    counts = set()
    for criteria, page, per_page, *_ in _mix(corpus):
        statements = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            search.search_sessions(search.Criteria(**criteria), page=page, per_page=per_page)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        counts.add(len([s for s in statements if s != "BEGIN"]))
    assert max(counts) <= 8, counts


def test_the_searchable_sessions_follow_sessions_formations_and_communes(corpus):
    """Moving a session, renaming a commune, changing a formation's dispositif or state:
    the next search sees it (the table of searchable sessions follows by triggers)."""
    s, formations = corpus["sessions"], corpus["formations"]
    pau = corpus["communes"]["pau"]
    pau.departement, pau.nom, pau.code_postal = "40", "Pau-Nouvelle", "40000"
    db.session.commit()
    assert found(departements=["40"]) == ids(corpus, "hotel_pau", "petite")
    assert found(communes=["pau-nouvelle"]) == found(communes=["40000"]) == \
        ids(corpus, "hotel_pau", "petite")
    s["hotel_pau"].commune = corpus["communes"]["bordeaux"]
    s["macon"].organisme_formateur = corpus["of"]["b"]
    s["petite"].date_fin = clock.today() - dt.timedelta(days=1)
    db.session.commit()
    assert found(departements=["33"]) == ids(corpus, "hotel_bdx", "hotel_pau", "macon")
    assert found(organismes=[corpus["of"]["b"].id]) == ids(corpus, "macon")
    assert found(q="enfance") == [] and found(q="enfance", include_ended=True) == \
        ids(corpus, "petite")
    formations["hotel"].dispositif = "HSP"
    formations["macon"].state = FormationState.ARCHIVEE
    db.session.commit()
    assert found(dispositif="HSP") == ids(corpus, "hotel_bdx", "hotel_pau")
    assert found(q="maçon") == []
    formations["macon"].state = FormationState.VALIDEE
    f.create_published_session(formations["macon"], reference="00999999",
                               commune=corpus["communes"]["bordeaux"])
    db.session.commit()
    assert found(q="00999999") == [s.id for s in formations["macon"].sessions
                                   if s.reference == "00999999"]
    assert len(found(q="maçon")) == 2
    db.session.execute(text("DELETE FROM session WHERE reference = '00999999'"))
    db.session.commit()
    assert found(q="00999999") == []


def test_search_reads_the_database_of_search_database_url(app, corpus, database_url,
                                                           monkeypatch):
    """SEARCH_DATABASE_URL (a read replica; here the same database): every statement of
    a search goes to it, none to DATABASE_URL."""
    monkeypatch.setitem(app.config, "SEARCH_DATABASE_URL", database_url)
    hotel, petite = ids(corpus, "hotel_bdx", "hotel_pau"), ids(corpus, "petite")
    on_main = []
    listener = lambda *args: on_main.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert found(q="hotellerie") == hotel
        assert found(dispositif="HSP") == petite
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert on_main == []
    engine = app.extensions["search_engines"][database_url]
    assert engine is not db.engine and str(engine.url).split("/")[-1] == \
        str(db.engine.url).split("/")[-1]
    search._close_reader()
    engine.dispose()


def test_without_keyword_large_counts_are_capped_and_shown_as_more_than(corpus, monkeypatch):
    """Without keyword, a facet value and the total stop counting past their cap and show
    « plus de … »; with a keyword (few sessions) they stay exact."""
    monkeypatch.setattr(search, "CAP", 1)
    monkeypatch.setattr(search, "TOTAL_CAP", 2)
    result = search.search_sessions(search.Criteria())
    assert (result.total, result.total_shown, len(result.rows)) == (3, "plus de 2", 4)
    shown = {f.value: f.shown for f in result.facets["dispositif"]}
    assert shown == {"HSP": "1", "conventionne_region": "plus de 1"}
    exact = search.search_sessions(search.Criteria(q="hôtellerie"))
    assert (exact.total, exact.total_shown) == (2, "2")
    assert [f.shown for f in exact.facets["dispositif"]] == ["2"]

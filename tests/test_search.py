"""Search of the offer: the one search function, on the database the suite runs on
(SQLite, then PostgreSQL in CI): the same corpus and the same queries must give the same
session ids on both, so each expectation below is checked on both databases."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

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

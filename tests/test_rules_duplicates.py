"""Duplicates: the fact builders find look-alikes in SQL (indexed columns), the rules
decide. A candidate cannot be created twice; a formation that looks like an existing one
is signalled before creation."""
from __future__ import annotations

import datetime as dt

import pytest

from backoffice import clock, facts, rules_engine
from backoffice.models import Formation, FormationState, Session
from tests.factories import (create_candidate, create_certification, create_formation,
                             create_session, create_structure)


def duplicates(**values):
    return rules_engine.evaluate("duplicates", facts.candidate_duplicate_facts(**values))


@pytest.fixture
def elodie(db):
    return create_candidate(nom="Dupont-Léger", prenom="Élodie",
                            date_naissance=dt.date(1995, 5, 17),
                            identifiant_france_travail="1234567A")


@pytest.mark.parametrize("nom, prenom", [
    ("DUPONT LEGER", "elodie"), ("dupontleger", "ÉLODIE"), ("Dupont - Léger", "Elodie")])
def test_the_same_person_written_otherwise_is_a_duplicate(elodie, nom, prenom):
    (violation,) = duplicates(nom=nom, prenom=prenom, date_naissance=dt.date(1995, 5, 17))
    assert violation.rule_id == "candidat_deja_dans_l_annuaire"
    assert violation.message == ("Ce candidat existe déjà dans l'annuaire : Dupont-Léger "
                                 "Élodie, né(e) le 17/05/1995. Retrouvez sa fiche par la "
                                 "recherche.")
    assert violation.fact_indexes == (0, 1)


@pytest.mark.parametrize("values", [
    dict(nom="Dupont-Léger", prenom="Élodie", date_naissance=dt.date(1996, 5, 17)),
    dict(nom="Dupont-Léger", prenom="Marie", date_naissance=dt.date(1995, 5, 17)),
    dict(nom="Martin", prenom="Élodie", date_naissance=dt.date(1995, 5, 17)),
])
def test_a_different_person_is_not_a_duplicate(elodie, values):
    assert duplicates(**values) == []


def test_the_same_france_travail_identifier_is_a_duplicate(elodie):
    (violation,) = duplicates(nom="Martin", prenom="Paul", date_naissance=dt.date(1980, 1, 2),
                              identifiant_france_travail=" 1234567A ")
    assert violation.rule_id == "identifiant_france_travail_deja_utilise"
    assert violation.message == ("L'identifiant France Travail 1234567A est déjà celui de "
                                 "Dupont-Léger Élodie (né(e) le 17/05/1995). Retrouvez sa fiche "
                                 "par la recherche.")


def test_the_candidate_being_edited_and_anonymised_candidates_are_not_duplicates(elodie):
    assert duplicates(nom="Dupont-Léger", prenom="Élodie", date_naissance=dt.date(1995, 5, 17),
                      exclude_id=elodie.id) == []
    elodie.anonymised_at = clock.now()
    assert duplicates(nom="Dupont-Léger", prenom="Élodie",
                      date_naissance=dt.date(1995, 5, 17)) == []


def test_the_builder_queries_only_look_alikes(elodie):
    create_candidate(nom="Martin", prenom="Élodie", date_naissance=dt.date(1995, 5, 17))
    found = facts.candidate_duplicate_facts(nom="dupont leger", prenom="X",
                                            date_naissance=dt.date(1995, 5, 17))
    assert [f["type"] for f in found] == ["candidat", "candidat_existant"]
    assert found[1]["candidat_id"] == elodie.id


# -- formations ------------------------------------------------------------------------------------
@pytest.fixture
def existing(db):
    structure = create_structure()
    certification = create_certification()
    formation = create_formation(structure=structure, certification=certification,
                                 reference="202600000011", intitule="Cuisinier (printemps)",
                                 state=FormationState.VALIDEE)
    create_session(formation=formation, reference="00254070", date_debut=dt.date(2027, 1, 4),
                   date_fin=dt.date(2027, 6, 30))
    return formation


def new_formation(existing, start, end, **overrides):
    values = dict(structure=existing.structure, certification=existing.certification,
                  organisme_formateur=existing.organisme_formateur)
    values.update(overrides)
    formation = create_formation(**values)
    create_session(formation=formation, date_debut=start, date_fin=end)
    return formation


def formation_duplicates(formation):
    return rules_engine.check("duplicates", formation)


def test_an_overlapping_formation_is_a_probable_duplicate(existing):
    formation = new_formation(existing, dt.date(2026, 9, 1), dt.date(2027, 2, 1))
    (violation,) = formation_duplicates(formation)
    assert violation.severity == "avertissement"
    assert violation.message == ("Doublon probable : la formation 202600000011 « Cuisinier "
                                 "(printemps) » prépare la même certification avec le même "
                                 "organisme formateur, et sa session 00254070 (du 04/01/2027 au "
                                 "30/06/2027) chevauche la vôtre.")


@pytest.mark.parametrize("change", ["later", "other_certification", "other_trainer",
                                    "deleted"])
def test_no_duplicate_without_every_condition(db, existing, change):
    overrides = {}
    start, end = dt.date(2026, 9, 1), dt.date(2027, 2, 1)
    if change == "later":
        start, end = dt.date(2027, 7, 1), dt.date(2027, 12, 1)
    elif change == "other_certification":
        overrides["certification"] = create_certification()
    elif change == "other_trainer":
        overrides["organisme_formateur"] = create_structure()
    elif change == "deleted":
        existing.state = FormationState.SUPPRIMEE
    assert formation_duplicates(new_formation(existing, start, end, **overrides)) == []


def test_duplicates_of_a_formation_being_created(existing):
    """Before creating: the formation and its planned session are not saved yet."""
    formation = Formation(intitule="Cuisinier", certification=existing.certification,
                                organisme_formateur=existing.organisme_formateur)
    formation.sessions = [Session(date_debut=dt.date(2027, 3, 1), date_fin=dt.date(2027, 9, 1),
                                  state="active")]
    found = facts.formation_duplicate_facts(formation)
    assert [f["type"] for f in found] == ["formation", "formation_existante", "paire_sessions"]
    assert [v.rule_id for v in rules_engine.evaluate("duplicates", found)] == [
        "formation_doublon_probable"]

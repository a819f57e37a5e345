"""Candidature rules on real candidatures (cursus year, limits): for every rule, a
candidature that passes and one that fails, with the French message the prescriber
sees; submitting on a Saturday is refused by the workflow guard."""
from __future__ import annotations

import datetime as dt

import pytest

from backoffice import clock, rules_engine, workflow
from backoffice.extensions import db as _db
from backoffice.models import CandidatureState, Dispositif
from tests.factories import (create_candidate, create_candidature, create_entry_point,
                             create_formation, create_session)

TUESDAY = dt.datetime(2026, 11, 24, 10, 30, tzinfo=clock.PARIS)


@pytest.fixture(autouse=True)
def tuesday_morning():
    with clock.frozen(TUESDAY):
        yield


def check(name, candidature):
    _db.session.flush()
    return rules_engine.check(name, candidature)


# -- cursus_eligibility --------------------------------------------------------------------------
@pytest.fixture
def apprentice(db):
    formation = create_formation(modalite_apprentissage=True, annees_cursus=[1, 2])
    return create_candidature(session=create_session(formation=formation),
                              state=CandidatureState.BROUILLON, annee_cursus=2)


def test_cursus_year_open_to_apprenticeship_passes(apprentice):
    assert check("cursus_eligibility", apprentice) == []


@pytest.mark.parametrize("year, rule_id, message", [
    (None, "annee_cursus_manquante",
     "Indiquez l'année de cursus visée (années ouvertes à l'apprentissage : 1, 2)."),
    (3, "annee_cursus_non_ouverte",
     "L'année 3 n'est pas ouverte à l'apprentissage pour cette formation (années ouvertes : "
     "1, 2)."),
])
def test_cursus_rule(apprentice, year, rule_id, message):
    assert rule_id not in [v.rule_id for v in check("cursus_eligibility", apprentice)]
    apprentice.annee_cursus = year
    (violation,) = check("cursus_eligibility", apprentice)
    assert (violation.rule_id, violation.message, violation.field) == (
        rule_id, message, "annee_cursus")


def test_no_cursus_year_needed_outside_apprenticeship(apprentice):
    apprentice.session.formation.modalite_apprentissage = False
    apprentice.annee_cursus = None
    assert check("cursus_eligibility", apprentice) == []


# -- candidature_limits ----------------------------------------------------------------------------
@pytest.fixture
def candidate(db):
    return create_candidate(nom="Dupont", prenom="Élodie")


@pytest.fixture
def regular(db, candidate):
    """A draft candidature that passes every limit."""
    return create_candidature(candidate=candidate, state=CandidatureState.BROUILLON,
                              session=create_session(reference="00254068", places=12))


@pytest.fixture
def hsp(db, candidate):
    """A draft HSP candidature on the next upcoming entry point: passes every limit."""
    session = create_session(reference="00254070", places=14,
                             formation=create_formation(dispositif=Dispositif.HSP))
    next_entry = create_entry_point(session=session,
                                    date_entree=clock.today() + dt.timedelta(days=10))
    create_entry_point(session=session, date_entree=clock.today() + dt.timedelta(days=40))
    create_entry_point(session=session, date_entree=clock.today() - dt.timedelta(days=20))
    _db.session.refresh(session)
    return create_candidature(candidate=candidate, state=CandidatureState.BROUILLON,
                              session=session, entry_point=next_entry)


def at(moment):
    def change(c):
        clock.set_now(moment)
    return change


def others(count, state=CandidatureState.EN_ATTENTE_AVIS, dispositif=None, same_session=False):
    def change(c):
        for _ in range(count):
            session = c.session if same_session else create_session(
                formation=create_formation(dispositif=dispositif or "conventionne_region"))
            create_candidature(candidate=c.candidate, session=session, state=state)
    return change


def retained(count):
    def change(c):
        c.session.places = count
        for _ in range(count):
            create_candidature(session=c.session, state=CandidatureState.RETENUE)
    return change


def entry(days):
    def change(c):
        chosen = [p for p in c.session.entry_points if (p.date_entree - clock.today()).days == days]
        c.entry_point = chosen[0] if chosen else None
    return change


def past_entries_only(c):
    for point in c.session.entry_points:
        if point.date_entree >= clock.today():
            _db.session.delete(point)
    _db.session.flush()
    _db.session.refresh(c.session)
    c.entry_point = c.session.entry_points[0]


LIMITS = {
    "hors_jours_ouvres": ("regular", at(dt.datetime(2026, 11, 28, 10, 0, tzinfo=clock.PARIS)),
                          "Les candidatures sont possibles du lundi au vendredi : nous sommes "
                          "samedi."),
    "hors_heures": ("regular", at(dt.datetime(2026, 11, 24, 20, 0, tzinfo=clock.PARIS)),
                    "Les candidatures sont possibles de 08:00 à 20:00 (heure de Paris) : il est "
                    "20:00."),
    "trop_de_candidatures_en_attente": ("regular", others(3),
                                        "DUPONT Élodie a déjà 3 candidatures en attente d'avis "
                                        ": 3 au plus."),
    "trop_de_candidatures_hsp": ("hsp", others(1, dispositif=Dispositif.HSP),
                                 "DUPONT Élodie a déjà 1 candidature(s) en attente d'avis sur "
                                 "le dispositif HSP : 1 au plus."),
    "deja_candidat_sur_la_session": ("regular", others(
        1, state=CandidatureState.EN_ATTENTE_VALIDATION, same_session=True),
        "DUPONT Élodie a déjà une candidature en cours sur la session 00254068."),
    "non_retenu_sur_session_hsp": ("hsp", others(1, state=CandidatureState.NON_RETENUE,
                                                 same_session=True),
                                   "DUPONT Élodie n'a pas été retenu(e) sur la session HSP "
                                   "00254070 : une nouvelle candidature sur cette session "
                                   "n'est pas possible."),
    "hsp_point_entree_manquant": ("hsp", lambda c: setattr(c, "entry_point", None),
                                  "Choisissez le prochain point d'entrée de la session (le "
                                  "04/12/2026)."),
    "hsp_point_entree_pas_le_prochain": ("hsp", entry(40),
                                         "Seul le prochain point d'entrée, le 04/12/2026, peut "
                                         "être choisi (et non celui du 03/01/2027)."),
    "hsp_point_entree_passe": ("hsp", past_entries_only,
                               "Le point d'entrée du 04/11/2026 est passé et la session n'en a "
                               "pas d'autre à venir."),
    "session_fermee": ("regular", lambda c: setattr(c.session, "ouverte_candidature", False),
                       "La session 00254068 n'est pas ouverte aux candidatures."),
    "session_annulee": ("regular", lambda c: setattr(c.session, "state", "annulee"),
                        "La session 00254068 est annulée ou supprimée."),
    "session_terminee": ("regular", lambda c: (
        setattr(c.session, "date_debut", dt.date(2026, 1, 5)),
        setattr(c.session, "date_fin", dt.date(2026, 6, 30))),
        "La session 00254068 s'est terminée le 30/06/2026."),
    "session_complete": ("regular", retained(2),
                         "La session 00254068 est complète : 2 candidats retenus pour 2 "
                         "places."),
}


@pytest.mark.parametrize("kind", ["regular", "hsp"])
def test_a_candidature_within_the_limits_passes(request, kind):
    assert check("candidature_limits", request.getfixturevalue(kind)) == []


def test_every_limit_has_its_test():
    assert set(LIMITS) == set(rules_engine.current("candidature_limits").rules)


@pytest.mark.parametrize("rule_id", sorted(LIMITS))
def test_limit(request, rule_id):
    kind, change, message = LIMITS[rule_id]
    candidature = request.getfixturevalue(kind)
    assert rule_id not in [v.rule_id for v in check("candidature_limits", candidature)]
    change(candidature)
    found = [v for v in check("candidature_limits", candidature) if v.rule_id == rule_id]
    assert [v.message for v in found] == [message]


def test_limits_count_only_the_candidate_s_other_live_candidatures(regular):
    others(2)(regular)
    others(3, state=CandidatureState.ANNULEE)(regular)
    others(1, state=CandidatureState.NON_RETENUE, same_session=True)(regular)
    regular.state = CandidatureState.EN_ATTENTE_AVIS  # itself is never counted
    assert check("candidature_limits", regular) == []


def test_submitting_on_saturday_is_refused_by_the_workflow(regular):
    clock.set_now(dt.datetime(2026, 11, 28, 9, 0, tzinfo=clock.PARIS))
    with pytest.raises(workflow.GuardFailed) as error:
        workflow.fire(regular, "soumettre", actor=regular.prescriber_user)
    assert error.value.message == ("« Valider la candidature » est refusé : Les candidatures "
                                   "sont possibles du lundi au vendredi : nous sommes samedi.")
    clock.set_now(TUESDAY)
    workflow.fire(regular, "soumettre", actor=regular.prescriber_user)
    assert regular.state == CandidatureState.EN_ATTENTE_AVIS

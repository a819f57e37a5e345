"""The engine: every violation once and in a stable order, a watchdog against looping
rules, one fresh session per evaluation (no 1,024-session cap, no thread), safe from
several threads, hot reload of the active version, durations for the scheduled jobs."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from backoffice import clock, rules_engine
from backoffice.models import RuleSetVersion, StaffRole
from backoffice.rules_engine import RulesError, RulesWatchdogError, evaluate, parse
from tests.factories import create_staff

TWO_RULES = """\
jeu: publication
titre: Essai
parametres: {longueur_max_intitule: 10}
regles:
  session_sans_lieu:
    message: "Session {reference} : lieu incomplet."
    champ: adresse
    gravite: bloquant
    all:
      - s:
          $and:
            - type: session
            - $or:
                - $nex: {adresse: 1}
                - $nex: {commune: 1}
  intitule_trop_long:
    message: "{longueur_intitule} caractères, {longueur_max_intitule} au plus."
    champ: intitule
    gravite: avertissement
    all:
      - f:
          $and:
            - type: formation
            - $gt: {longueur_intitule: {$param: longueur_max_intitule}}
exemples:
  - {nom: rien, faits: [], attendu: []}
"""


@pytest.fixture(scope="module")
def two_rules():
    return parse(TWO_RULES, source="essai.yaml", expected_name="publication")


def test_every_violation_once_in_file_order_then_fact_order(two_rules):
    facts = [{"type": "session", "reference": "2"},              # $or matches twice
             {"type": "formation", "longueur_intitule": 12},
             {"type": "session", "reference": "1", "adresse": "x"}]
    violations = evaluate(two_rules, facts)
    assert [(v.rule_id, v.fact_index) for v in violations] == [
        ("session_sans_lieu", 0), ("session_sans_lieu", 2), ("intitule_trop_long", 1)]
    assert violations[0].message == "Session 2 : lieu incomplet."
    assert violations[2].message == "12 caractères, 10 au plus."
    assert violations[2].severity == "avertissement" and not violations[2].blocking
    assert violations[0].field == "adresse" and violations[0].blocking
    # The same facts in another order give the same violations, ordered by rule then fact.
    again = evaluate(two_rules, [facts[2], facts[1], facts[0]])
    assert [(v.rule_id, v.fact_index) for v in again] == [
        ("session_sans_lieu", 0), ("session_sans_lieu", 2), ("intitule_trop_long", 1)]


ANY_RULE = """\
jeu: publication
titre: Essai
regles:
  incomplet:
    message: "Manque : {f.reference}{s.reference}"
    champ: intitule
    gravite: bloquant
    any:
      - f:
          $and:
            - type: formation
            - $nex: {intitule: 1}
      - s:
          $and:
            - type: session
            - $nex: {adresse: 1}
exemples:
  - {nom: rien, faits: [], attendu: []}
"""


def test_an_any_rule_gives_one_violation_per_matching_fact():
    """durable-rules fires ``any`` for each matching fact, then again for the pair."""
    ruleset = parse(ANY_RULE, source="any.yaml", expected_name="publication")
    violations = evaluate(ruleset, [{"type": "session", "reference": "S1"},
                                    {"type": "formation", "reference": "F1"},
                                    {"type": "session", "reference": "S2", "adresse": "x"}])
    assert [(v.fact_index, v.fact_indexes, v.message) for v in violations] == [
        (0, (None, 0), "Manque : —S1"), (1, (1, None), "Manque : F1—")]


def test_none_values_are_absent_and_reserved_fields_refused(two_rules):
    assert [v.rule_id for v in evaluate(two_rules, [
        {"type": "session", "reference": "1", "adresse": None, "commune": "Pau"}])] == \
        ["session_sans_lieu"]
    with pytest.raises(RulesError, match="champ réservé « id »"):
        evaluate(two_rules, [{"type": "session", "id": 3}])
    with pytest.raises(RulesError, match="n'a pas de type"):
        evaluate(two_rules, [{"reference": "1"}])
    with pytest.raises(RulesError, match="« debut » doit être un texte, un nombre"):
        evaluate(two_rules, [{"type": "session", "debut": dt.date(2026, 1, 1)}])


def test_registered_names_are_versioned(two_rules):
    assert two_rules.registered_name == f"publication__v1__{two_rules.digest[:8]}"
    other = parse(TWO_RULES.replace("10}", "11}"), source="essai.yaml",
                  expected_name="publication", version=7, version_id=3)
    assert other.registered_name.startswith("publication__v7__")
    assert evaluate(other, [{"type": "formation", "longueur_intitule": 11}]) == []
    assert len(evaluate(two_rules, [{"type": "formation", "longueur_intitule": 11}])) == 1


def _looping_ruleset() -> rules_engine.RuleSet:
    """A rule written without the loader's guard: it matches the state document that
    durable-rules re-asserts after every action, and fires forever (#288)."""
    base = parse(TWO_RULES, source="boucle.yaml", expected_name="publication")
    definition = {"session_sans_lieu": {"all": [{"m": {"$ex": {"id": 1}}}],
                                        "run": "session_sans_lieu"}}
    return dataclasses.replace(base, definition=definition, digest="boucle" + base.digest)


def test_the_watchdog_stops_a_looping_rule(app):
    looping = _looping_ruleset()
    started = time.monotonic()
    with pytest.raises(RulesWatchdogError, match="plus de 10000 déclenchements"):
        evaluate(looping, [{"type": "session", "reference": "1"}])
    assert time.monotonic() - started < 5
    # The engine is still usable afterwards.
    assert evaluate(rules_engine.current("publication"), []) == []


def test_the_watchdog_deadline(app, monkeypatch):
    monkeypatch.setitem(app.config, "RULES_FIRING_BUDGET", 10 ** 9)
    monkeypatch.setitem(app.config, "RULES_DEADLINE_SECONDS", 0.2)
    started = time.monotonic()
    with pytest.raises(RulesWatchdogError, match="délai dépassé"):
        evaluate(_looping_ruleset(), [{"type": "session"}])
    assert time.monotonic() - started < 3


def test_no_session_cap_and_no_thread_over_many_evaluations(two_rules):
    """durable-rules refuses the 1,025th live session of a ruleset; each evaluation
    deletes its own, and the host starts no background thread."""
    threads_before = set(threading.enumerate())
    facts = [{"type": "formation", "longueur_intitule": 12}]
    for _ in range(1_500):
        assert len(evaluate(two_rules, facts)) == 1
    assert set(threading.enumerate()) - threads_before == set()


def test_evaluations_from_several_threads_at_once(app, two_rules):
    errors: list[str] = []

    def worker(length: int):
        try:
            for _ in range(300):
                facts = [{"type": "formation", "longueur_intitule": length},
                         {"type": "session", "reference": str(length)}]
                got = [(v.rule_id, v.message) for v in evaluate(two_rules, facts)]
                expected = [("session_sans_lieu", f"Session {length} : lieu incomplet.")]
                if length > 10:
                    expected.append(("intitule_trop_long", f"{length} caractères, 10 au plus."))
                if got != expected:
                    errors.append(f"{length}: {got}")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(5, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


# -- hot reload -----------------------------------------------------------------------------------
def test_a_new_active_version_applies_without_restart(db):
    facts = [{"type": "formation", "longueur_intitule": 250}]
    assert rules_engine.current("publication").version_label == "version 1 (fichier)"
    assert "intitule_trop_long" not in [v.rule_id for v in evaluate("publication", facts)]
    content = rules_engine.file_version("publication").content.replace(
        "longueur_max_intitule: 300", "longueur_max_intitule: 200")
    author = create_staff(StaffRole.RESPONSABLE_REGLES)
    row = rules_engine.activate("publication", content, author=author, comment="Plus court")
    db.session.commit()
    assert row.version == 2
    messages = [v.message for v in evaluate("publication", facts)]
    assert "L'intitulé compte 250 caractères, 200 au plus." in messages
    current = rules_engine.current("publication")
    assert current.version == 2 and current.registered_name.startswith("publication__v2__")
    versions = db.session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)).all()
    assert [(v.version, v.active, v.author_id) for v in versions] == [
        (1, False, None), (2, True, author.id)]


def test_an_invalid_stored_version_is_ignored_and_the_last_good_one_kept(db):
    good = rules_engine.file_version("publication").content.replace(
        "longueur_max_intitule: 300", "longueur_max_intitule: 250")
    db.session.add(RuleSetVersion(ruleset="publication", version=2, content=good, active=True))
    db.session.commit()
    facts = [{"type": "formation", "longueur_intitule": 260}]
    assert "intitule_trop_long" in [v.rule_id for v in evaluate("publication", facts)]
    db.session.query(RuleSetVersion).update({"active": False})
    db.session.add(RuleSetVersion(ruleset="publication", version=3, content="{}", active=True))
    db.session.commit()
    assert "intitule_trop_long" in [v.rule_id for v in evaluate("publication", facts)]
    assert rules_engine.current("publication").version == 2
    assert rules_engine.invalid_active_version("publication").startswith(
        "La version 3 active de « publication » est ignorée : publication version 3, ligne 1")


def test_the_version_check_is_cached_outside_tests(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "RULES_VERSION_CHECK_SECONDS", 60)
    rules_engine.invalidate()
    assert rules_engine.current("publication").version == 1
    content = rules_engine.file_version("publication").content.replace("300", "299", 1)
    db.session.add(RuleSetVersion(ruleset="publication", version=2, content=content,
                                  active=True))
    db.session.commit()
    assert rules_engine.current("publication").version == 1   # within the cache period
    rules_engine.invalidate("publication")
    assert rules_engine.current("publication").version == 2


def test_activation_refuses_an_identical_or_invalid_version_or_no_comment(db):
    content = rules_engine.file_version("publication").content
    with pytest.raises(RulesError, match="identique à la version active"):
        rules_engine.activate("publication", content, author=None, comment="rien")
    with pytest.raises(RulesError, match="Indiquez un commentaire"):
        rules_engine.activate("publication", content + "\n", author=None, comment=" ")
    with pytest.raises(rules_engine.RuleFileError, match="opérateur inconnu"):
        rules_engine.activate("publication", content.replace("$nex:", "$nexx:", 1),
                              author=None, comment="cassé")
    assert db.session.scalars(select(RuleSetVersion)).all() == []


def test_revert_creates_a_new_version_with_the_old_content(db):
    base = rules_engine.file_version("publication").content
    rules_engine.activate("publication", base.replace("300", "280", 1), author=None,
                          comment="v2")
    db.session.commit()
    row = rules_engine.revert("publication", 1, author=None, comment="trop strict")
    db.session.commit()
    assert (row.version, row.content, row.comment) == (3, base,
                                                       "Retour à la version 1 : trop strict")
    assert [(v.version, v.active) for v in rules_engine.history("publication")] == [
        (3, True), (2, False), (1, False)]
    with pytest.raises(RulesError, match="déjà la version active"):
        rules_engine.revert("publication", 3, author=None)


# -- durations -------------------------------------------------------------------------------------
def test_deadlines_for_the_scheduled_jobs():
    assert rules_engine.deadline("expiration_brouillon") == dt.timedelta(days=15)
    assert rules_engine.deadline("validation_niveau_1") == dt.timedelta(days=15)
    assert rules_engine.deadline("rappel_validation_niveau_1") == dt.timedelta(days=3)
    assert rules_engine.deadline("rappel_moderation_jours_ouvres").days == 5
    assert rules_engine.deadline("conservation_donnees") == dt.timedelta(days=730)
    assert rules_engine.deadline("avis_non_transmis") == dt.timedelta(0)
    with pytest.raises(RulesError, match="Délai inconnu « inconnu »"):
        rules_engine.deadline("inconnu")


def test_durations_count_working_days_and_calendar_years():
    friday = dt.datetime(2026, 11, 20, 9, 0, tzinfo=clock.PARIS)
    moderation = rules_engine.duration("rappel_moderation_jours_ouvres")
    assert str(moderation) == "5 jours ouvrés"
    assert clock.to_local(moderation.before(friday)).date() == dt.date(2026, 11, 13)
    assert clock.to_local(moderation.after(friday)).date() == dt.date(2026, 11, 27)
    retention = rules_engine.duration("conservation_donnees")
    leap_day = dt.datetime(2028, 2, 29, 12, 0, tzinfo=clock.PARIS)
    assert clock.to_local(retention.before(leap_day)).date() == dt.date(2026, 2, 28)
    assert rules_engine.duration("expiration_brouillon").timedelta == dt.timedelta(days=15)
    with pytest.raises(RulesError, match="en ans, pas en jours"):
        retention.timedelta


def test_a_changed_number_in_the_active_version_changes_the_deadline(db):
    content = rules_engine.file_version("deadlines").content.replace(
        "expiration_brouillon_jours: 15", "expiration_brouillon_jours: 20")
    content = content.replace("jours_inactivite: 15}]\n    attendu: [brouillon_a_supprimer]",
                              "jours_inactivite: 20}]\n    attendu: [brouillon_a_supprimer]")
    rules_engine.activate("deadlines", content, author=None, comment="20 jours")
    db.session.commit()
    assert rules_engine.deadline("expiration_brouillon") == dt.timedelta(days=20)


# -- messages -------------------------------------------------------------------------------------
def test_message_placeholders_and_filters():
    rule = rules_engine.Rule(
        id="r", message="{f.jour_debut|date} {f.jour|jour} {f.annees|liste} {f.ok} {max} "
                        "{f.absent} {{littéral}} {f.naissance|date}",
        field="x", severity="bloquant", description="", position=0, aliases=("f",),
        types=("session",), parameters=("max",))
    text = rules_engine.render_message(rule, {"f": {
        "jour_debut": 20697, "jour": 6, "annees": [1, 2], "ok": False,
        "naissance": "1995-05-17"}}, {"max": 3})
    assert text == "01/09/2026 samedi 1, 2 non 3 — {littéral} 17/05/1995"

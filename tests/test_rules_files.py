"""Every rule file of rules/ loads, and its example cases (facts → expected rule ids) give
exactly the rules they announce; every rule is illustrated by at least one example."""
from __future__ import annotations

import pytest

from backoffice import rules_engine
from backoffice.rules_engine import DEFAULT_DIRECTORY, load_directory

RULESETS = load_directory(DEFAULT_DIRECTORY)
CASES = [pytest.param(rs, example, id=f"{name}: {example.name}")
         for name, rs in RULESETS.items() for example in rs.examples]


def test_every_rule_set_has_its_file():
    assert set(RULESETS) == set(rules_engine.RULESETS)


@pytest.mark.parametrize("ruleset, example", CASES)
def test_example_case(ruleset, example):
    """The policy owner's example gives exactly the announced rules."""
    got = sorted(v.rule_id for v in rules_engine.evaluate(ruleset, example.facts))
    assert got == sorted(example.expected), example.name


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_every_rule_is_shown_failing_and_the_file_shows_a_passing_case(name):
    ruleset = RULESETS[name]
    illustrated = {rule_id for example in ruleset.examples for rule_id in example.expected}
    assert set(ruleset.rules) - illustrated == set()
    assert any(not example.expected for example in ruleset.examples)


@pytest.mark.parametrize("name", sorted(RULESETS))
def test_every_rule_has_a_french_message_a_field_and_a_severity(name):
    for rule in RULESETS[name].rules.values():
        assert rule.message and rule.field
        assert rule.severity in ("bloquant", "avertissement")


def test_numbers_are_written_once_as_parameters():
    """The limits a policy owner changes are parameters, substituted into the conditions."""
    publication = RULESETS["publication"]
    assert publication.parameters["longueur_max_intitule"] == 300
    assert publication.rules["intitule_trop_long"].parameters == ("longueur_max_intitule",)
    condition = publication.definition["intitule_trop_long"]["all"][0]["f"]["$and"]
    assert condition[0] == {"$nex": {"$s": 1}}  # the state-loop guard, added by the loader
    assert condition[-1] == {"$gt": {"longueur_intitule": 300}}
    limits = RULESETS["candidature_limits"].parameters
    assert (limits["max_en_attente_avis"], limits["max_en_attente_avis_hsp"]) == (3, 1)
    assert (limits["heure_ouverture"], limits["heure_fermeture"]) == ("08:00", "20:00")


def test_the_issue_message_example():
    facts = [dict(RULESETS["publication"].examples[0].facts[0], longueur_intitule=312)]
    messages = [v.message for v in rules_engine.evaluate(RULESETS["publication"], facts)]
    assert "L'intitulé compte 312 caractères, 300 au plus." in messages

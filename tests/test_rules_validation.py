"""A malformed rule file is refused before durable-rules sees it, with a French message
naming the file, the line, the rule and the path inside the file; the application keeps
its last good version."""
from __future__ import annotations

from pathlib import Path

import pytest

from backoffice import create_app, rules_engine
from backoffice.config import TestingConfig
from backoffice.rules_engine import RuleFileError, parse

BASE = """\
jeu: publication
titre: Essai
parametres:
  longueur_max_intitule: 300
regles:
  intitule_trop_long:
    message: "L'intitulé compte {longueur_intitule} caractères, {longueur_max_intitule} au plus."
    champ: intitule
    gravite: bloquant
    all:
      - f:
          $and:
            - type: formation
            - $gt: {longueur_intitule: {$param: longueur_max_intitule}}
exemples:
  - nom: trop long
    faits: [{type: formation, longueur_intitule: 312}]
    attendu: [intitule_trop_long]
"""
CONDITION = "            - $gt: {longueur_intitule: {$param: longueur_max_intitule}}"


def problems_of(text: str, source: str = "rules/publication.yaml") -> list[str]:
    with pytest.raises(RuleFileError) as error:
        parse(text, source=source, expected_name="publication")
    return [str(p) for p in error.value.problems]


def with_condition(condition: str) -> str:
    return BASE.replace(CONDITION, condition)


def test_the_base_file_is_valid():
    ruleset = parse(BASE, source="rules/publication.yaml", expected_name="publication")
    assert list(ruleset.rules) == ["intitule_trop_long"]


@pytest.mark.parametrize("condition, expected", [
    ("            - $nmt: {lien_web: 'https?://.+'}", "opérateur inconnu « $nmt »"),
    ("            - $foo: {longueur_intitule: 3}", "opérateur inconnu « $foo »"),
    ("            - $not: {longueur_intitule: 3}", "« $not » n'existe pas"),
    ("            - $gt: {longeur_intitule: 300}", "champ inconnu « longeur_intitule » pour un "
                                                   "fait « formation »"),
    ("            - $gt: {longueur_intitule: {$param: longueur_maxi}}",
     "paramètre inconnu « longueur_maxi »"),
    ("            - $gt: {longueur_intitule: [300, 400]}", "une liste n'est pas permise ici"),
    ("            - intitule: null", "valeur vide (null)"),
    ("            - $gt: {longueur_intitule: '300'}", "le champ est de type nombre"),
    ("            - $ex: {sid: 1}", "« sid » est réservé au moteur"),
    ("            - $s: 1", "ne peut pas porter sur l'état du moteur"),
    ("            - {longueur_intitule: 3, longueur_objectif: 0}", "combinez-les avec $and"),
    ("            - $gt: {longueur_intitule: {$div: {$l: {$m: longueur_objectif}, $r: 0}}}",
     "division par zéro"),
    ("            - $iany: {intitule: {$gt: {$i: 3}}}", "ne s'applique qu'à un champ liste"),
    ("            - annees_cursus: 3", "est une liste : utilisez $iany"),
    ("            - $mt: {longueur_intitule: 'a.*'}", "expression régulière"),
])
def test_a_bad_condition_is_refused_with_its_path(condition, expected):
    problems = problems_of(with_condition(condition))
    assert len(problems) >= 1
    assert any(expected in p for p in problems), problems
    first = next(p for p in problems if expected in p)
    assert first.startswith("rules/publication.yaml, ligne 1")  # line 1x
    assert "règle « intitule_trop_long »" in first
    assert "chemin regles.intitule_trop_long.all[0].f.$and[1]" in first


def test_the_message_names_the_exact_line():
    problems = problems_of(with_condition("            - $nmt: {lien_web: 'x'}"))
    assert problems[0].startswith("rules/publication.yaml, ligne 14, règle « intitule_trop_long »"
                                  ", chemin regles.intitule_trop_long.all[0].f.$and[1].$nmt : "
                                  "opérateur inconnu « $nmt » (opérateurs permis : $and, $or")


def test_bad_yaml_syntax_names_the_line():
    problems = problems_of(BASE.replace("    champ: intitule\n", "    champ: [intitule\n"))
    assert len(problems) == 1
    assert problems[0].startswith("rules/publication.yaml, ligne ")
    assert "syntaxe YAML invalide" in problems[0]


def test_bad_json_syntax_names_the_line():
    problems = problems_of('{"jeu": "publication",\n "titre": }', source="rules/publication.json")
    assert problems == ["rules/publication.json, ligne 2 : JSON invalide : Expecting value"]


def test_a_json_file_is_accepted_too():
    import json

    import yaml

    data = yaml.safe_load(BASE)
    ruleset = parse(json.dumps(data, indent=2), source="rules/publication.json",
                    expected_name="publication")
    assert ruleset.rules["intitule_trop_long"].parameters == ("longueur_max_intitule",)


def test_cross_fact_ordering_comparison_is_refused():
    """It segfaults the C engine (durable-rules #381): the validator refuses it."""
    text = """\
jeu: duplicates
titre: Essai
regles:
  chevauchement:
    message: "Chevauchement"
    champ: sessions
    gravite: avertissement
    all:
      - a:
          $and:
            - type: paire_sessions
      - b:
          $and:
            - type: paire_sessions
            - $lt: {jour_debut: {a: jour_fin}}
exemples:
  - {nom: rien, faits: [], attendu: []}
"""
    with pytest.raises(RuleFileError) as error:
        parse(text, source="rules/duplicates.yaml", expected_name="duplicates")
    (problem,) = error.value.problems
    assert "comparaison d'ordre ($lt) entre deux faits : le moteur C plante" in str(problem)
    assert problem.path == "regles.chevauchement.all[1].b.$and[1].$lt.jour_debut"
    assert problem.line == 15


def test_cross_fact_inequality_and_arithmetic_are_refused():
    text = """\
jeu: duplicates
titre: Essai
regles:
  r1:
    message: "x"
    champ: nom
    gravite: bloquant
    all:
      - c: {type: candidat}
      - e:
          $and:
            - type: candidat_existant
            - $neq: {nom: {c: nom}}
            - $gt: {candidat_id: {$add: {$l: {c: candidat_id}, $r: 1}}}
exemples:
  - {nom: rien, faits: [], attendu: []}
"""
    with pytest.raises(RuleFileError) as error:
        parse(text, source="rules/duplicates.yaml", expected_name="duplicates")
    messages = [p.message for p in error.value.problems]
    assert any("seule l'égalité est permise" in m for m in messages)
    assert any("un calcul ne peut pas utiliser un autre fait" in m for m in messages)


@pytest.mark.parametrize("change, expected", [
    (("gravite: bloquant", "gravite: grave"), "« gravite » vaut bloquant ou avertissement"),
    (("    message: \"L'intitulé compte {longueur_intitule} caractères, {longueur_max_intitule} "
      "au plus.\"\n", ""), "« message » est obligatoire"),
    (("    champ: intitule\n", "    champ: intitule\n    count: 3\n"), "« count »"),
    (("    champ: intitule\n", "    champ: intitule\n    run: x\n"), "« run » est ajouté par "
                                                                   "le moteur"),
    (("      - f:\n", "      - f$not:\n"), "construction refusée « f$not »"),
    (("            - type: formation\n", ""), "chaque motif commence par le type du fait"),
    (("type: formation", "type: stagiaire"), "type de fait inconnu « stagiaire »"),
    (("{longueur_max_intitule} au plus", "{longueur_maximale} au plus"),
     "« {longueur_maximale} » n'est ni un paramètre ni un champ"),
    (("{longueur_intitule} caractères", "{longueur_intitule|majuscules} caractères"),
     "filtre inconnu « majuscules »"),
    (("attendu: [intitule_trop_long]", "attendu: [intitule_long]"),
     "règle inconnue « intitule_long »"),
    (("longueur_intitule: 312}]", "longueur_intitulé: 312}]"),
     "champ inconnu « longueur_intitulé »"),
    (("jeu: publication", "jeu: deadlines"), "le jeu s'appelle « deadlines » mais le fichier "
                                             "est celui de « publication »"),
    (("titre: Essai", "titre: Essai\nauteur: moi"), "clé inconnue « auteur »"),
    (("  longueur_max_intitule: 300\n",
      "  longueur_max_intitule: 300\n  longueur_max_intitule: 200\n"),
     "la clé « longueur_max_intitule » est écrite deux fois"),
    (("  longueur_max_intitule: 300\n", "  longueur_max_intitule: 300\n  heure_limite: '8:00'\n"),
     "écrivez l'heure sur cinq caractères"),
    (("  longueur_max_intitule: 300\n", "  longueur_max_intitule: 300\n  longueur_intitule: 3\n"),
     "porte le nom d'un champ des faits"),
    (("exemples:\n  - nom: trop long\n    faits: [{type: formation, longueur_intitule: 312}]\n"
      "    attendu: [intitule_trop_long]\n", "exemples: []\n"), "« exemples » est obligatoire"),
])
def test_a_bad_envelope_is_refused(change, expected):
    old, new = change
    assert old in BASE
    problems = problems_of(BASE.replace(old, new))
    assert any(expected in p for p in problems), problems


def test_unquoted_time_read_as_a_number_by_yaml_is_explained():
    """YAML 1.1 reads 20:00 as the number 1200: the policy owner is told to quote it."""
    text = """\
jeu: candidature_limits
titre: Essai
parametres:
  heure_fermeture: 20:00
regles:
  hors_heures:
    message: "Trop tard : il est {heure}."
    champ: submitted_at
    gravite: bloquant
    all:
      - c:
          $and:
            - type: candidature
            - $gte: {heure: {$param: heure_fermeture}}
exemples:
  - {nom: tard, faits: [{type: candidature, heure: "21:00"}], attendu: [hors_heures]}
"""
    with pytest.raises(RuleFileError) as error:
        parse(text, source="rules/candidature_limits.yaml", expected_name="candidature_limits")
    assert "écrivez la valeur entre guillemets (YAML lit 20:00 comme le nombre 1200)" in \
        error.value.message


def test_every_problem_of_a_file_is_listed_at_once():
    text = BASE.replace("gravite: bloquant", "gravite: grave").replace(
        CONDITION, "            - $nmt: {lien_web: x}")
    assert len(problems_of(text)) == 2


# -- start-up and last good version -------------------------------------------------------------
def _copy_rules(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    for path in rules_engine.DEFAULT_DIRECTORY.glob("*.yaml"):
        (directory / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return directory


def test_create_app_fails_on_a_malformed_rule_file(tmp_path):
    directory = _copy_rules(tmp_path)
    path = directory / "publication.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("$gt: {longueur_intitule",
                                                             "$gtt: {longueur_intitule"),
                    encoding="utf-8")
    config = type("Config", (TestingConfig,), {"RULES_DIR": str(directory)})
    try:
        with pytest.raises(RuleFileError) as error:
            create_app(config)
        assert "rules/publication.yaml, ligne 56, règle « intitule_trop_long », chemin " \
               "regles.intitule_trop_long.all[0].f.$and[1].$gtt : opérateur inconnu « $gtt »" \
               in error.value.message
    finally:
        rules_engine.init_app_without_flask()


def test_a_missing_rule_file_fails_start_up(tmp_path):
    directory = _copy_rules(tmp_path)
    (directory / "deadlines.yaml").unlink()
    with pytest.raises(RuleFileError, match="fichier manquant pour le jeu « deadlines »"):
        rules_engine.load_directory(directory)


def test_reloading_a_broken_file_keeps_the_last_good_version(app, tmp_path, monkeypatch):
    directory = _copy_rules(tmp_path)
    monkeypatch.setattr(rules_engine._registry, "directory", directory)
    before = rules_engine.file_version("publication")
    path = directory / "publication.yaml"
    path.write_text("jeu: publication\nregles: [", encoding="utf-8")
    problems = rules_engine.reload_files()
    assert [p.source for p in problems] == ["rules/publication.yaml"]
    assert "syntaxe YAML invalide" in problems[0].message
    assert rules_engine.file_version("publication") is before

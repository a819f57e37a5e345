"""Benchmark of the rules engine (a script, not a timed test).

    .venv/bin/python benchmarks/rules.py [--evaluations 100000] [--timing 20000]

For ``publication`` and ``candidature_limits`` it measures evaluations per second through
``rules_engine.evaluate`` (durable-rules, fresh session per evaluation), and the same
checks written as plain Python on the same facts (same parameters, same French messages,
checked to give the same results first). Then it runs ``--evaluations`` evaluations in a
row and reports the resident memory before and after (no growth expected: every
evaluation deletes its durable-rules session) and the peak.

The facts are the example cases of the rule files (passing and failing ones, 1 to 3 facts
each), cycled. Fact building (SQL) is not measured: it is the same for both.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import sys
import time
from itertools import cycle, islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backoffice import rules_engine  # noqa: E402
from backoffice.rules_engine import render_message  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024 / 1024


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the same checks in plain Python --------------------------------------------------------------
def _messages(ruleset, found):
    found.sort(key=lambda item: (ruleset.rules[item[0]].position, item[1]))
    return [(rule_id, render_message(ruleset.rules[rule_id], {alias: fact},
                                     ruleset.parameters))
            for rule_id, index, alias, fact in found]


def publication_python(ruleset, facts):
    p = ruleset.parameters
    found = []
    for index, f in enumerate(facts):
        def hit(rule_id, alias="f", fact=f, index=index):
            found.append((rule_id, index, alias, fact))
        if f["type"] == "formation":
            app, pro = f.get("modalite_apprentissage"), f.get("modalite_contrat_pro")
            mention = f.get("mention_intitule")
            if "intitule" not in f:
                hit("intitule_obligatoire")
            if f.get("longueur_intitule", 0) > p["longueur_max_intitule"]:
                hit("intitule_trop_long")
            if f.get("longueur_objectif") == 0:
                hit("objectif_obligatoire")
            if f.get("longueur_programme") == 0:
                hit("programme_obligatoire")
            if "siren_organisme_formateur" not in f:
                hit("organisme_formateur_obligatoire")
            if "nb_certifications" in f and \
                    f["nb_certifications"] != p["certifications_par_formation"]:
                hit("certification_unique")
            if app is True and f.get("certification_ouverte_apprentissage") is False:
                hit("certification_non_ouverte_apprentissage")
            for name in ("modalite_formation_continue", "modalite_contrat_pro",
                         "modalite_apprentissage"):
                if name not in f:
                    hit(f"{name}_obligatoire")
            if f.get("nb_modalites_renseignees") == 3 and f.get("nb_modalites_oui") == 0:
                hit("aucune_modalite")
            if app is True and f.get("nb_annees_cursus") == 0:
                hit("annees_cursus_manquantes")
            if app is False and f.get("nb_annees_cursus", 0) > 0:
                hit("annees_cursus_sans_apprentissage")
            if any(y < p["annee_cursus_min"] or y > p["annee_cursus_max"]
                   for y in f.get("annees_cursus", ())):
                hit("annee_cursus_hors_limites")
            if "lien_web" in f and ("lien_web_domaine" not in f or f.get(
                    "lien_web_schema") not in ("http", "https")):
                hit("lien_web_invalide")
            if f.get("nb_sessions") == 0:
                hit("aucune_session")
            if f.get("autorisee_autre_siren") is False and "siren_structure" in f and \
                    "siren_organisme_formateur" in f and \
                    f["siren_organisme_formateur"] != f["siren_structure"]:
                hit("organisme_formateur_autre_siren")
            if app is True and pro is False and "mention_intitule" in f and \
                    mention != "apprentissage":
                hit("mention_apprentissage_attendue")
            if app is False and pro is True and "mention_intitule" in f and \
                    mention != "professionnalisation":
                hit("mention_professionnalisation_attendue")
            if app is True and pro is True and "mention_intitule" in f and \
                    mention != "professionnalisation_ou_apprentissage":
                hit("mention_pro_ou_apprentissage_attendue")
            if app is False and pro is False and "mention_intitule" in f and \
                    mention != "aucune":
                hit("mention_sans_alternance")
        elif f["type"] == "session":
            if "jour_fin" in f and "jour_debut" in f and f["jour_fin"] < f["jour_debut"]:
                hit("session_fin_avant_debut", "s")
            if "jour_debut" in f and "jour_aujourdhui" in f and \
                    f["jour_debut"] < f["jour_aujourdhui"]:
                hit("session_commence_dans_le_passe", "s")
            if "adresse" not in f:
                hit("session_adresse_manquante", "s")
            if "commune" not in f:
                hit("session_commune_manquante", "s")
    return _messages(ruleset, found)


def limits_python(ruleset, facts):
    p = ruleset.parameters
    found = []
    for index, c in enumerate(facts):
        if c["type"] != "candidature":
            continue

        def hit(rule_id, c=c, index=index):
            found.append((rule_id, index, "c", c))
        hsp = c.get("dispositif") == "HSP"
        if "jour_semaine" in c and not p["premier_jour"] <= c["jour_semaine"] <= p["dernier_jour"]:
            hit("hors_jours_ouvres")
        if "heure" in c and not p["heure_ouverture"] <= c["heure"] < p["heure_fermeture"]:
            hit("hors_heures")
        if c.get("nb_en_attente_avis", 0) >= p["max_en_attente_avis"]:
            hit("trop_de_candidatures_en_attente")
        if hsp and c.get("nb_en_attente_avis_hsp", 0) >= p["max_en_attente_avis_hsp"]:
            hit("trop_de_candidatures_hsp")
        if c.get("nb_en_cours_meme_session", 0) > 0:
            hit("deja_candidat_sur_la_session")
        if hsp and c.get("nb_non_retenues_meme_session", 0) > 0:
            hit("non_retenu_sur_session_hsp")
        chosen, upcoming = c.get("point_entree_id"), c.get("prochain_point_entree_id")
        if hsp and chosen is None and upcoming is not None:
            hit("hsp_point_entree_manquant")
        if hsp and chosen is not None and upcoming is not None and chosen != upcoming:
            hit("hsp_point_entree_pas_le_prochain")
        if hsp and chosen is not None and upcoming is None:
            hit("hsp_point_entree_passe")
        if c.get("session_ouverte") is False:
            hit("session_fermee")
        if "session_etat" in c and c["session_etat"] != "active":
            hit("session_annulee")
        if "jour_fin_session" in c and "jour_aujourdhui" in c and \
                c["jour_fin_session"] < c["jour_aujourdhui"]:
            hit("session_terminee")
        if "places" in c and c.get("nb_retenues", 0) >= c["places"]:
            hit("session_complete")
    return _messages(ruleset, found)


PYTHON = {"publication": publication_python, "candidature_limits": limits_python}


# -- measures -------------------------------------------------------------------------------------
def cases(ruleset) -> list[list[dict]]:
    return [[{k: v for k, v in fact.items() if v is not None} for fact in example.facts]
            for example in ruleset.examples]


def check_agreement(ruleset, python_check) -> None:
    for facts in cases(ruleset):
        engine = [(v.rule_id, v.message) for v in rules_engine.evaluate(ruleset, facts)]
        plain = python_check(ruleset, facts)
        assert engine == plain, (ruleset.name, facts, engine, plain)


def per_second(run, items) -> tuple[float, float]:
    gc.collect()
    started = time.perf_counter()
    for facts in items:
        run(facts)
    elapsed = time.perf_counter() - started
    return len(items) / elapsed, elapsed / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=100_000,
                        help="evaluations in a row for the memory measure")
    parser.add_argument("--timing", type=int, default=20_000,
                        help="evaluations per timing measure")
    args = parser.parse_args()

    rules_engine.init_app_without_flask()
    print(f"Python {platform.python_version()}, {platform.machine()}, "
          f"{os.cpu_count()} processeurs ; durable-rules 2.0.28")
    rss_start = rss_mb()
    results = {}
    for name in ("publication", "candidature_limits"):
        ruleset = rules_engine.file_version(name)
        check_agreement(ruleset, PYTHON[name])
        items = list(islice(cycle(cases(ruleset)), args.timing))
        facts_per_eval = sum(len(f) for f in items) / len(items)
        rules_engine.evaluate(ruleset, items[0])  # registration, outside the measure
        engine_rate, engine_us = per_second(lambda f: rules_engine.evaluate(ruleset, f), items)
        python_rate, python_us = per_second(lambda f: PYTHON[name](ruleset, f), items)
        results[name] = (engine_rate, python_rate)
        print(f"\n{name} : {len(ruleset.rules)} règles, {facts_per_eval:.1f} faits par "
              f"évaluation ({len(ruleset.examples)} cas en boucle, {args.timing} évaluations)")
        print(f"  durable-rules : {engine_rate:>9,.0f} évaluations/s ({engine_us:,.0f} µs)")
        print(f"  Python pur    : {python_rate:>9,.0f} évaluations/s ({python_us:,.1f} µs)")
        print(f"  rapport       : {python_rate / engine_rate:,.0f} fois plus lent avec "
              "durable-rules")

    ruleset = rules_engine.file_version("publication")
    items = cycle(cases(ruleset))
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    checkpoints = []
    for index in range(1, args.evaluations + 1):
        rules_engine.evaluate(ruleset, next(items))
        if index % (args.evaluations // 4 or 1) == 0:
            checkpoints.append(f"{rss_mb():.1f}")
    elapsed = time.perf_counter() - started
    gc.collect()
    after = rss_mb()
    print(f"\nMémoire : {args.evaluations:,} évaluations de publication en {elapsed:.0f} s")
    print(f"  RSS au démarrage {rss_start:.1f} Mio ; avant la série {before:.1f} Mio ; "
          f"après {after:.1f} Mio (paliers : {' / '.join(checkpoints)} Mio) ; "
          f"croissance {after - before:+.1f} Mio")
    print(f"  pic de mémoire du processus : {peak_mb():.1f} Mio")


if __name__ == "__main__":
    main()

"""An edited rule file is untrusted: the web process never reads it, a child process does,
under a wall-clock, CPU and memory limit, and only a few at once. What a policy owner
observes: Essayer and Activer answer at once with a progress box; a rule that hangs the
engine ends as « Arrêté : limite de temps dépassée » with the active version unchanged;
beyond the limit of runs at once the request is refused with a French message; a valid
file is activated through the child, exactly once."""
from __future__ import annotations

import datetime as dt
import io
import json
import sys
import threading

import pytest
from sqlalchemy import select

from backoffice import clock, rules_engine, rules_tryout
from backoffice.models import JobRun, RuleSetVersion
from tests.test_rules_screen import (EDIT_URL, complete_formation, owner, post_edit,  # noqa: F401
                                     shorter_titles, text_of, textarea, wait_for_tryout)

# durable-rules compiles ``$mt`` patterns into its own automaton; this one sends the C
# core into an endless loop while the rule set is registered (out of reach of the
# engine's Python watchdog). The validator accepts it: Python's ``re`` compiles it.
HANGING_RULE = """  intitule_en_boucle:
    message: "Intitulé suspect."
    champ: intitule
    gravite: avertissement
    all:
      - f:
          $and:
            - type: formation
            - $mt: {intitule: "((a*)*)b"}

"""


def with_hanging_rule(content: str) -> str:
    position = content.index("  intitule_trop_long:")
    return content[:position] + HANGING_RULE + content[position:]


@pytest.fixture
def limits(app, monkeypatch):
    def set_limits(*, cpu: int = 2, wall: float = 60, memory_mb: int = 1024, runs: int = 2):
        for key, value in (("RULES_CHILD_CPU_SECONDS", cpu), ("RULES_CHILD_WALL_SECONDS", wall),
                           ("RULES_CHILD_MEMORY_MB", memory_mb),
                           ("RULES_MAX_CONCURRENT_TRYOUTS", runs)):
            monkeypatch.setitem(app.config, key, value)
    return set_limits


@pytest.fixture
def web_never_reads_rule_files(monkeypatch):
    """In this (web) process, reading or registering a rule file fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("le processus web a lu ou enregistré un fichier de règles")
    monkeypatch.setattr(rules_engine, "_load_text", refuse)
    monkeypatch.setattr(rules_engine, "_ensure_registered", refuse)
    return monkeypatch


@pytest.mark.parametrize("action", ["essayer", "activer"])
@pytest.mark.parametrize("limit, expected", [
    ({"cpu": 2, "wall": 60}, "Arrêté : limite de temps dépassée (2 s de calcul)."),
    ({"cpu": 60, "wall": 4}, "Arrêté : limite de temps dépassée (4 s)."),
], ids=["cpu", "wall"])
def test_a_hanging_rule_is_stopped_and_the_active_version_is_unchanged(
        client, db, owner, limits, web_never_reads_rule_files, action, limit, expected):
    limits(**limit)
    content = with_hanging_rule(textarea(client.get(EDIT_URL).text))
    response = post_edit(client, content, action, comment="Intitulés suspects")
    assert response.status_code == 200  # at once: the request does not wait for the child
    assert "Vérification en cours…" in text_of(response.text)
    result = wait_for_tryout(client, response.text, timeout=120)
    assert result["status"] == "echec"
    text = text_of(result["html"])
    assert expected in text
    if action == "activer":
        assert "Version refusée : la version active n'a pas changé." in text
    db.session.commit()  # the test's session began reading before the child wrote
    run = db.session.scalars(select(JobRun)).one()
    assert (run.status, run.error) == ("echec", expected)
    assert db.session.scalars(select(RuleSetVersion)).all() == []
    web_never_reads_rule_files.undo()
    assert rules_engine.current("publication").version == 1
    assert "intitule_en_boucle" not in rules_engine.current("publication").rules


def test_activation_through_the_child_is_recorded_once(client, db, owner,
                                                       web_never_reads_rule_files):
    long_title = complete_formation("202600000250", "Cuisinier " + "x" * 240)
    db.session.commit()
    content = shorter_titles(textarea(client.get(EDIT_URL).text))
    response = post_edit(client, content, "activer", comment="Intitulés de 200 caractères")
    assert response.status_code == 200
    result = wait_for_tryout(client, response.text)
    assert result["status"] == "succes", result
    assert "Version 2 de « Publication d'une formation » activée" in text_of(result["html"])
    for _ in range(3):  # polling again activates nothing more
        again = wait_for_tryout(client, response.text)
        assert again["status"] == "succes"
    db.session.commit()
    versions = db.session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)).all()
    assert [(v.version, v.active, v.comment) for v in versions] == [
        (1, False, "Version initiale (fichier rules/)"),
        (2, True, "Intitulés de 200 caractères")]
    assert versions[1].content == content and versions[1].author_id == owner.id
    run = db.session.scalars(select(JobRun)).one()
    assert (run.job, run.status, run.rows_changed) == (rules_tryout.ACTIVATION_JOB, "succes", 1)
    web_never_reads_rule_files.undo()  # the stored version now applies, here too
    assert [v.message for v in rules_engine.check("publication", long_title)] == [
        "L'intitulé compte 250 caractères, 200 au plus."]


def test_a_run_that_is_no_longer_running_is_never_activated(client, db, owner):
    """The supervisor gave up on the run (limit reached): a late worker stores nothing."""
    content = shorter_titles(textarea(client.get(EDIT_URL).text))
    run = JobRun(job=rules_tryout.ACTIVATION_JOB, run_for=clock.now(), started_at=clock.now(),
                 status="echec", error="Arrêté : limite de temps dépassée (600 s).",
                 summary=json.dumps({"jeu": "publication", "mode": "activation",
                                     "commentaire": "Tardif", "auteur_id": owner.id}))
    db.session.add(run)
    db.session.commit()
    rules_tryout._activate(run.id, "publication", content,
                           rules_tryout.state_of(run))
    assert db.session.scalars(select(RuleSetVersion)).all() == []
    assert db.session.get(JobRun, run.id).status == "echec"


def test_at_most_n_tryouts_and_activations_at_once(client, db, owner, limits):
    limits(cpu=3, wall=60, runs=2)
    stale = JobRun(job=rules_tryout.JOB_NAME, run_for=clock.now(),
                   started_at=clock.now() - dt.timedelta(hours=3), status="en_cours",
                   dry_run=True, summary=json.dumps({"jeu": "publication"}))
    db.session.add(stale)  # its supervisor died long ago: it does not count
    db.session.commit()
    content = with_hanging_rule(textarea(client.get(EDIT_URL).text))
    pages = [post_edit(client, content, "essayer") for _ in range(2)]
    assert [page.status_code for page in pages] == [200, 200]
    for action in ("essayer", "activer"):
        refused = post_edit(client, content, action, comment="Une de trop")
        assert refused.status_code == 429
        assert "Trop d'essais en cours, réessayez dans quelques minutes." in \
            text_of(refused.text)
        assert "intitule_en_boucle" in textarea(refused.text)  # the edit is kept
    assert db.session.query(JobRun).count() == 3  # the stale one and the two admitted
    for page in pages:
        assert "Arrêté : limite de temps dépassée" in \
            text_of(wait_for_tryout(client, page.text, timeout=120)["html"])
    db.session.commit()
    again = post_edit(client, content, "essayer")  # room again
    assert again.status_code == 200
    assert wait_for_tryout(client, again.text, timeout=120)["status"] == "echec"


def test_parallel_requests_never_admit_more_than_n_runs(app, db, limits, monkeypatch):
    """Five requests at the same instant, in as many sessions (as from several web
    workers), with room for two: never more than two admitted; the refused leave no row."""
    class NoChild:  # the admission is under test here, not the child
        def __init__(self, *args, **kwargs):
            self.stdin = io.StringIO()

        def wait(self):
            return 0
    monkeypatch.setattr(rules_tryout.subprocess, "Popen", NoChild)
    limits(runs=2)
    barrier = threading.Barrier(5)
    outcomes = []

    def request():
        with app.app_context():
            barrier.wait()
            try:
                rules_tryout.start_tryout("publication", "jeu: publication", references=[],
                                          author=None)
                outcomes.append("admis")
            except rules_tryout.TryoutError as error:
                outcomes.append(error.message)
    threads = [threading.Thread(target=request) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    admitted = outcomes.count("admis")
    assert admitted <= 2
    assert outcomes.count(rules_tryout.BUSY_MESSAGE) == 5 - admitted
    db.session.commit()
    assert db.session.query(JobRun).count() == admitted


@pytest.mark.parametrize("code, limit, expected", [
    ("bytearray(400 * 1024 * 1024)", {"memory_mb": 200},
     "Arrêté : limite de mémoire dépassée (200 Mo)."),
    ("while True: pass", {"cpu": 1}, "Arrêté : limite de temps dépassée (1 s de calcul)."),
], ids=["memory", "cpu"])
def test_the_worker_runs_under_memory_and_cpu_limits(code, limit, expected):
    limits = rules_tryout.Limits(**{"wall": 60, **limit})
    assert rules_tryout._supervise(0, "", limits, command=[sys.executable, "-c", code]) == \
        expected


def test_a_file_too_slow_to_load_is_refused(monkeypatch):
    """Once active, every web worker loads the version: the child refuses a slow one."""
    monkeypatch.setattr(rules_tryout, "MAX_LOAD_SECONDS", 0.0)
    verdict = rules_tryout._verify("publication",
                                   rules_engine.file_version("publication").content)
    assert not verdict["valid"]
    assert verdict["problems"][0].startswith("Le fichier demande ")
    assert verdict["problems"][0].endswith(" s de calcul pour être chargé (0 s au plus : "
                                           "chaque serveur le chargera) ; simplifiez-le.")

"""The « Règles » screen, as a policy owner uses it: read the rules, edit a file, try it
on real formations in a child process (the difference with the active version, before
anything is saved), activate it (it applies at once), see the history and its diff,
go back to an earlier version. Invalid edits are refused and change nothing."""
from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
import time

import pytest
from sqlalchemy import select

from backoffice import clock, rules_engine, rules_tryout, tasks
from backoffice.models import JobRun, RuleSetVersion, StaffRole
from tests.conftest import csrf_token, login
from tests.factories import (create_certification, create_commune, create_formation,
                             create_session, create_staff, create_structure)

EDIT_URL = "/admin/regles/publication/modifier"


@pytest.fixture
def owner(client, db):
    user = create_staff(StaffRole.RESPONSABLE_REGLES, prenom="Agnès", nom="Vidal")
    db.session.commit()
    login(client, user)
    return user


def complete_formation(reference: str, intitule: str, state: str = "validee"):
    structure = create_structure()
    formation = create_formation(
        reference=reference, intitule=intitule, structure=structure, state=state,
        certification=create_certification(), objectif="Objectif", programme="Programme",
        lien_web="https://exemple.fr", modalite_formation_continue=True,
        modalite_contrat_pro=False, modalite_apprentissage=False, annees_cursus=[])
    create_session(formation=formation, adresse="1 rue Sainte-Catherine",
                   commune=create_commune())
    return formation


def textarea(page_html: str) -> str:
    match = re.search(r'<textarea[^>]*name="content"[^>]*>(.*?)</textarea>', page_html, re.S)
    assert match, "no rule file textarea"
    return html.unescape(match.group(1))


def post_edit(client, content: str, action: str, **fields):
    page = client.get(EDIT_URL)
    return client.post(EDIT_URL, data={"csrf_token": csrf_token(page.text), "content": content,
                                       "action": action, "comment": fields.get("comment", ""),
                                       "references": fields.get("references", "")})


def wait_for_tryout(client, page_html: str, timeout: float = 120) -> dict:
    """Run the task queue, as a runner process would (it starts the child), then poll
    the run as the page does."""
    match = re.search(r'data-url="([^"]+)"', page_html)
    assert match, "no try-out on the page"
    url = html.unescape(match.group(1))
    tasks.run_pending(client.application)
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(url).get_json()
        if data["status"] != "en_cours" or time.monotonic() > deadline:
            return data
        time.sleep(0.3)


def shorter_titles(content: str, fix_example: bool = True) -> str:
    content = content.replace("longueur_max_intitule: 300", "longueur_max_intitule: 200")
    if fix_example:
        content = content.replace("nom: intitulé de 300 caractères, la limite\n    faits: "
                                  "[{type: formation, longueur_intitule: 300}",
                                  "nom: intitulé de 200 caractères, la limite\n    faits: "
                                  "[{type: formation, longueur_intitule: 200}")
    return content


def text_of(fragment: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment)))


# -- access ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("role, status", [
    (StaffRole.RESPONSABLE_REGLES, 200), (StaffRole.ADMIN, 200), (StaffRole.MODERATEUR, 403)])
def test_who_opens_the_rules_screen(client, db, role, status):
    user = create_staff(role)
    db.session.commit()
    login(client, user)
    for url in ("/admin/regles/", "/admin/regles/publication/", EDIT_URL,
                "/admin/regles/publication/historique"):
        assert client.get(url).status_code == status, url


def test_anonymous_users_go_to_the_login_page(client):
    response = client.get("/admin/regles/")
    assert response.status_code == 302
    assert "/connexion?next=/admin/regles/" in response.headers["Location"]


def test_a_moderator_cannot_activate(client, db):
    user = create_staff(StaffRole.MODERATEUR)
    db.session.commit()
    login(client, user)
    page = client.get("/admin/")
    response = client.post(EDIT_URL, data={"csrf_token": csrf_token(page.text),
                                           "content": "x", "action": "activer"})
    assert response.status_code == 403


def test_the_list_shows_rule_sets_rules_messages_severities_and_parameters(client, owner):
    page = text_of(client.get("/admin/regles/").text)
    for title in ("Publication d'une formation", "Limites des candidatures", "Doublons",
                  "Année de cursus en apprentissage", "Délais et échéances"):
        assert title in page
    assert "version 1 (fichier) active" in page
    assert "intitule_trop_long L'intitulé compte {longueur_intitule} caractères, " \
           "{longueur_max_intitule} au plus. Bloquant intitule longueur_max_intitule = 300" in page
    assert "Avertissement" in page
    assert "max_en_attente_avis = 3" in page
    detail = text_of(client.get("/admin/regles/deadlines/").text)
    assert "expiration_brouillon : 15 jours" in detail
    assert "rappel_moderation_jours_ouvres : 5 jours ouvrés" in detail


def test_the_unknown_rule_set_is_404(client, owner):
    assert client.get("/admin/regles/inconnu/").status_code == 404


# -- refusals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["essayer", "activer"])
def test_an_invalid_edit_is_refused_with_its_error(client, db, owner, action):
    """The page answers at once; the child process finds the error and the page shows it."""
    content = textarea(client.get(EDIT_URL).text).replace(
        "$gt: {longueur_intitule: {$param: longueur_max_intitule}}",
        "$nmt: {longueur_intitule: {$param: longueur_max_intitule}}")
    response = post_edit(client, content, action, comment="essai")
    assert response.status_code == 200
    assert "$nmt: {longueur_intitule" in textarea(response.text)  # the edit is kept
    result = wait_for_tryout(client, response.text)
    assert result["status"] == "echec"
    page = text_of(result["html"])
    assert "Version refusée : la version active n'a pas changé." in page
    assert "publication (version modifiée), ligne 56, règle « intitule_trop_long », chemin " \
           "regles.intitule_trop_long.all[0].f.$and[1].$nmt : opérateur inconnu « $nmt »" in page
    assert db.session.scalars(select(RuleSetVersion)).all() == []
    assert rules_engine.current("publication").version == 1


def test_activation_is_refused_when_an_example_fails(client, db, owner):
    content = shorter_titles(textarea(client.get(EDIT_URL).text), fix_example=False)
    response = post_edit(client, content, "activer", comment="Intitulés plus courts")
    result = wait_for_tryout(client, response.text)
    assert result["status"] == "echec"
    assert "Exemple en échec — exemple « intitulé de 300 caractères, la limite » : attendu " \
           "aucune règle, obtenu intitule_trop_long" in text_of(result["html"])
    assert db.session.scalars(select(RuleSetVersion)).all() == []


def test_activation_needs_a_comment(client, db, owner):
    content = shorter_titles(textarea(client.get(EDIT_URL).text))
    response = post_edit(client, content, "activer", comment="  ")
    assert response.status_code == 422
    assert "Indiquez un commentaire" in text_of(response.text)


def test_a_crash_of_the_rules_engine_refuses_the_version_and_spares_the_web_worker(
        client, db, owner):
    """The worker dies on a signal: the activation is refused with the reason, nothing is
    stored, and the screen still answers."""
    content = shorter_titles(textarea(client.get(EDIT_URL).text))
    run = JobRun(job=rules_tryout.ACTIVATION_JOB, run_for=clock.now(), started_at=clock.now(),
                 status="en_cours", summary=json.dumps({
                     "jeu": "publication", "mode": "activation", "commentaire": "Plus court",
                     "auteur_id": owner.id}))
    db.session.add(run)
    db.session.commit()
    crash = [sys.executable, "-c",
             "import os, signal, sys; sys.stdin.read(); os.kill(os.getpid(), signal.SIGSEGV)"]
    error = rules_tryout._supervise(run.id, content, rules_tryout.Limits(), command=crash)
    rules_tryout._finish(run.id, error=error)
    data = client.get(f"/admin/regles/publication/essais/{run.id}?format=json").get_json()
    assert data["status"] == "echec"
    assert "Version refusée : la version active n'a pas changé. Le moteur de règles s'est " \
           "arrêté brutalement (signal 11, SIGSEGV) : cette version ne peut pas être " \
           "activée." in text_of(data["html"])
    assert db.session.scalars(select(RuleSetVersion)).all() == []
    assert client.get("/admin/regles/").status_code == 200


def test_a_crashed_tryout_is_marked_failed(db):
    run = JobRun(job=rules_tryout.JOB_NAME, run_for=clock.now(), status="en_cours",
                 dry_run=True, summary=json.dumps({"jeu": "publication"}))
    db.session.add(run)
    db.session.commit()
    limits = rules_tryout.Limits(wall=30)
    error = rules_tryout._supervise(run.id, "", limits, command=[
        sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    assert error == ("Le moteur de règles s'est arrêté brutalement (signal 11, SIGSEGV) : "
                     "cette version ne peut pas être activée.")
    rules_tryout._finish(run.id, error=error)
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.error) == ("echec", error)
    assert rules_tryout._supervise(run.id, "", rules_tryout.Limits(wall=0.5), command=[
        sys.executable, "-c", "import time; time.sleep(5)"]) == \
        "Arrêté : limite de temps dépassée (0.5 s)."


def test_tryout_progress_and_stalled_runs(client, db, owner):
    state = {"jeu": "publication", "references": [], "auteur": "Agnès Vidal", "total": 1000,
             "traites": 200, "resultat": None}
    running = JobRun(job=rules_tryout.JOB_NAME, run_for=clock.now(), started_at=clock.now(),
                     status="en_cours", dry_run=True, summary=json.dumps(state))
    stalled = JobRun(job=rules_tryout.JOB_NAME, run_for=clock.now(),
                     started_at=clock.now() - dt.timedelta(hours=3), status="en_cours",
                     dry_run=True, summary=json.dumps(state))
    db.session.add_all([running, stalled])
    db.session.commit()
    data = client.get(f"/admin/regles/publication/essais/{running.id}?format=json").get_json()
    assert (data["status"], data["traites"], data["total"]) == ("en_cours", 200, 1000)
    assert "200 / 1000 objets examinés" in text_of(data["html"])
    data = client.get(f"/admin/regles/publication/essais/{stalled.id}?format=json").get_json()
    assert data["status"] == "echec"
    assert "L'essai ne répond plus" in text_of(data["html"])
    assert client.get(f"/admin/regles/duplicates/essais/{running.id}").status_code == 404


# -- the whole cycle ------------------------------------------------------------------------------
def test_edit_try_activate_and_roll_back(client, db, owner):
    long_title = complete_formation("202600000250", "Cuisinier " + "x" * 240)
    short_title = complete_formation("202600000100", "Pâtissier")
    draft = complete_formation("202600000201", "Boulanger " + "y" * 200, state="brouillon")
    db.session.commit()
    assert rules_engine.check("publication", long_title) == []

    # 1. Edit and try: the difference with the active version, nothing saved.
    content = shorter_titles(textarea(client.get(EDIT_URL).text))
    page = post_edit(client, content, "essayer")
    assert page.status_code == 200
    assert "longueur_max_intitule: 200" in textarea(page.text)  # the edit stays in the form
    result = wait_for_tryout(client, page.text)
    assert result["status"] == "succes", result
    text = text_of(result["html"])
    assert "Comparaison avec la version 1 (fichier) active ; 3 objets examinés." in text
    examples = len(rules_engine.file_version("publication").examples)
    assert f"Les {examples} exemples du fichier passent." in text
    assert "2 formations ne passeraient plus (dont 1 publiées) :" in text
    assert "202600000250 — Cuisinier" in text and "(Validée (publiée))" in text
    assert "+ L'intitulé compte 250 caractères, 200 au plus. (intitule_trop_long)" in text
    assert "202600000201 — Boulanger" in text and "(Brouillon)" in text
    assert "1 formation sans changement." in text
    assert db.session.scalars(select(RuleSetVersion)).all() == []
    assert rules_engine.check("publication", long_title) == []

    # 2. Activate: a new version, who/when/comment, in force at once. (The test shares its
    # session with the requests: end its read transaction, older than the child's writes.)
    db.session.commit()
    response = post_edit(client, content, "activer", comment="Intitulés de 200 caractères")
    assert response.status_code == 200
    result = wait_for_tryout(client, response.text)
    assert result["status"] == "succes", result
    assert "Version 2 de « Publication d'une formation » activée : elle s'applique " \
           "maintenant partout." in text_of(result["html"])
    db.session.commit()
    followed = text_of(client.get("/admin/regles/publication/").text)
    assert "version 2 — activée le" in followed and "par Agnès Vidal" in followed
    versions = db.session.scalars(select(RuleSetVersion).order_by(RuleSetVersion.version)).all()
    assert [(v.version, v.active, v.author_id, v.comment) for v in versions] == [
        (1, False, None, "Version initiale (fichier rules/)"),
        (2, True, owner.id, "Intitulés de 200 caractères")]
    assert versions[1].content == content
    assert [v.message for v in rules_engine.check("publication", long_title)] == [
        "L'intitulé compte 250 caractères, 200 au plus."]
    assert rules_engine.check("publication", short_title) == []

    # 3. History and diff between versions.
    history = text_of(client.get("/admin/regles/publication/historique").text)
    assert "2 active" in history and "Intitulés de 200 caractères" in history
    diff = html.unescape(client.get("/admin/regles/publication/diff?de=1&a=2").text)
    assert "-  longueur_max_intitule: 300" in diff
    assert "+  longueur_max_intitule: 200" in diff

    # 4. Go back to version 1: stored as version 3.
    history_page = client.get("/admin/regles/publication/historique")
    response = client.post("/admin/regles/publication/revenir", data={
        "csrf_token": csrf_token(history_page.text), "version": 1,
        "comment": "Trop de formations refusées"})
    assert response.status_code == 302
    result = wait_for_tryout(client, client.get(response.headers["Location"]).text)
    assert "Retour à la version 1 : c'est maintenant la version 3, active partout." in \
        text_of(result["html"])
    db.session.commit()
    active = db.session.scalar(select(RuleSetVersion).where(RuleSetVersion.active.is_(True)))
    assert (active.version, active.comment) == (3, "Retour à la version 1 : Trop de formations "
                                                   "refusées")
    assert active.content == rules_engine.file_version("publication").content
    assert rules_engine.check("publication", long_title) == []
    assert draft.state == "brouillon"


def test_tryout_on_chosen_objects(client, db, owner):
    chosen = complete_formation("202600000250", "Cuisinier " + "x" * 240)
    complete_formation("202600000251", "Cuisinier " + "z" * 240)
    db.session.commit()
    content = shorter_titles(textarea(client.get(EDIT_URL).text))
    page = post_edit(client, content, "essayer", references=f"{chosen.reference}, 999999999999")
    result = wait_for_tryout(client, page.text)
    text = text_of(result["html"])
    assert "sur 202600000250, 999999999999" in text
    assert "1 objet examiné." in text
    assert "Introuvables : 999999999999" in text
    assert "1 formation ne passerait plus (dont 1 publiées) :" in text
    assert "202600000251" not in text


def test_an_oversized_file_is_not_read(client, db, owner):
    response = post_edit(client, "# " + "x" * 250_000, "essayer")
    assert response.status_code == 413
    assert "Le fichier dépasse 200 ko : il n'a pas été lu." in text_of(response.text)
    assert db.session.scalars(select(JobRun)).all() == []

"""An OF gestionnaire enters a formation in « Mon catalogue », in the browser: the cursus
years appear only with « Contrat d'apprentissage : Oui », the intitulé's counter counts
« n / 300 » as one types, the certification and commune pickers fill their fields, a
session is added then duplicated, and Publier → relecture → Confirmer sends it to
moderation."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

OF = "of@demo.fr"


def test_of_creates_publishes_a_formation_with_sessions(open_as, checked):
    page = open_as(OF)
    page.goto("/catalogue/")
    checked.page(page, shot="of-catalogue")
    page.get_by_role("link", name="Ajouter une nouvelle formation").click()
    checked.page(page)

    intitule = page.get_by_label("Intitulé")
    counter = page.locator("#compteur-intitule")
    expect(counter).to_have_text("0 / 300")
    intitule.press_sequentially("Soudeur TIG en navigateur")
    expect(counter).to_have_text("25 / 300")

    years = page.locator("[data-champ=annees_cursus]")
    expect(years).to_be_hidden()
    page.get_by_role("group", name="Contrat d'apprentissage").get_by_label("Oui").check()
    expect(years).to_be_visible()
    page.get_by_role("group", name="Contrat d'apprentissage").get_by_label("Non").check()
    expect(years).to_be_hidden()
    page.get_by_role("group", name="Contrat d'apprentissage").get_by_label("Oui").check()
    years.get_by_label("2e année").check()
    page.get_by_role("group", name="Formation continue (hors alternance)").get_by_label("Oui").check()
    page.get_by_role("group", name="Contrat de professionnalisation").get_by_label("Non").check()

    picker = page.get_by_role("searchbox", name=re.compile("Rechercher : Certification"))
    picker.press_sequentially("menuisier")
    choice = page.locator("[data-champ=certification_id] .list-group-item").first
    chosen = choice.text_content()
    choice.click()
    expect(page.locator("[data-source-libelle=certification_id]")).to_have_text(
        f"Sélection : {chosen}")
    page.get_by_label("Lien web").fill("https://www.exemple.fr/soudeur-tig")
    checked.page(page, shot="of-formation-form", phone_shot=True)
    page.get_by_role("button", name="Enregistrer").click()
    checked.page(page)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Formation ")

    page.get_by_role("link", name="Ajouter une session").click()
    checked.page(page)
    page.get_by_label("Date de début").fill("2027-02-01")
    page.get_by_label("Date de fin").fill("2027-06-30")
    page.get_by_label("Adresse", exact=True).fill("12 rue des Ateliers")
    commune = page.get_by_role("searchbox", name=re.compile("Rechercher : Ville"))
    commune.press_sequentially("33000")
    page.locator("[data-champ=commune_id] .list-group-item").first.click()
    expect(page.locator("[data-source-libelle=commune_id]")).to_contain_text("Bordeaux")
    page.get_by_label("Nombre de places").fill("12")
    checked.page(page)
    page.get_by_role("button", name="Enregistrer").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_contain_text("ajoutée")
    sessions = page.locator("#sessions tbody tr")
    expect(sessions).to_have_count(1)
    formation_url = page.url.split("#")[0]

    sessions.first.get_by_role("button", name="Dupliquer").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_contain_text("dupliquée")
    expect(page.get_by_label("Nombre de places")).to_have_value("12")
    page.goto(formation_url)
    checked.page(page)
    expect(sessions).to_have_count(2)

    page.get_by_role("button", name="Publier").click()
    checked.page(page)
    objectif = page.get_by_label("Objectif")
    expect(objectif).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#" + objectif.get_attribute("aria-describedby").split()[0])).to_be_visible()
    objectif.fill("Souder à l'arc TIG des tôles et des tubes en acier et en inox.")
    page.get_by_label("Programme et contenu").fill("Lecture de plans, préparation, soudage "
                                                   "en toutes positions, contrôle.")
    page.get_by_role("button", name="Publier").click()
    checked.page(page, shot="of-relecture")
    expect(page.get_by_role("heading", level=1)).to_have_text("Relisez votre saisie")
    expect(page.locator("table tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Confirmer la publication").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    page.goto(formation_url)
    checked.page(page)
    expect(page.locator("main")).to_contain_text("État : En attente de modération")

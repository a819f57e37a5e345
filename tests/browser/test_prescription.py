"""A level-1 prescriber searches the offer with filters, unfolds a session, looks for the
candidate, tries to register them again (the duplicate is sent back to the existing
file), chooses them and submits the candidature; a level-3 prescriber of the same
structure then validates it."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LEVEL1, LEVEL3 = "prescripteur1@demo.fr", "prescripteur3@demo.fr"


def test_prescriber_searches_registers_and_submits_level3_validates(open_as, checked, server):
    nom, prenom, naissance = server.rows(
        "SELECT c.nom, c.prenom, c.date_naissance FROM candidate c JOIN structure s "
        "ON s.id = c.created_by_structure_id WHERE s.raison_sociale = ? "
        "AND c.anonymised_at IS NULL ORDER BY c.id LIMIT 1",
        "France Travail Bordeaux Bastide")[0]
    naissance = dt.date.fromisoformat(naissance).strftime("%d/%m/%Y")

    page = open_as(LEVEL1)
    page.goto("/")
    checked.page(page)
    page.get_by_role("link", name="Rechercher une formation").click()
    checked.page(page)
    page.get_by_label("Départements (5 au plus)").select_option("33")
    page.get_by_label("Exclure les formations commencées").check()
    page.get_by_role("button", name="Rechercher").click()
    checked.page(page, shot="prescripteur-recherche", phone_shot=True)
    rows = page.locator("tbody tr[data-session]")
    expect(rows.first).to_be_visible()
    expect(page.locator("tbody")).to_contain_text("(33)")

    row = page.locator("tbody tr[data-session]", has=page.get_by_role("link", name="Ajouter")).first
    details = row.locator("details")
    expect(details.locator(".detail-session")).to_be_hidden()
    details.locator("summary").click()
    expect(details.locator(".detail-session")).to_be_visible()
    row.get_by_role("link", name="Ajouter").click()
    checked.page(page)

    page.get_by_label("Nom", exact=True).fill(nom)
    page.get_by_label("Prénom").fill(prenom)
    page.get_by_label("Date de naissance (jj/mm/aaaa)").fill(naissance)
    page.get_by_role("button", name="Rechercher").click()
    checked.page(page)
    page.get_by_role("link", name="Inscrire un nouveau candidat").click()
    checked.page(page)
    expect(page.locator("#nom")).to_have_value(nom)
    page.get_by_role("group", name="Civilité").get_by_label("Madame").check()
    page.get_by_role("button", name="Enregistrer").click()
    checked.page(page)
    france_travail = page.get_by_role("group", name="Inscrit à France Travail")
    expect(france_travail).to_have_attribute("aria-invalid", "true")
    france_travail.get_by_label("Non").check()
    page.get_by_role("button", name="Enregistrer").click()
    checked.page(page)
    expect(page.locator(".alert-warning").first).to_be_visible()
    duplicate = page.locator("#doublon")
    expect(duplicate).to_contain_text(nom.upper())
    duplicate.get_by_role("link", name="Choisir ce candidat").click()
    checked.page(page)

    page.get_by_label("Raisons du choix de formation").fill("Projet validé en entretien.")
    page.locator("#annee_cursus").select_option("1")
    page.locator("#consentement").check()
    checked.page(page, shot="prescripteur-candidature")
    page.get_by_role("button", name="Valider", exact=True).click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()

    page = open_as(LEVEL3)
    page.goto("/prescription/candidatures?onglet=attente_validation")
    checked.page(page, shot="prescripteur3-candidatures")
    page.get_by_label("Filtrer :").fill(nom)
    page.get_by_role("button", name="Filtrer").click()
    checked.page(page)
    row = page.locator("tbody tr", has_text=f"{nom.upper()} {prenom}").first
    reference = row.locator("td a").first.text_content().strip()
    row.get_by_role("link", name=reference).click()
    checked.page(page)
    page.get_by_role("button", name="Valider la candidature de niveau 1").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    page.goto("/prescription/candidatures?onglet=attente_validation&q=" + reference)
    checked.page(page)
    expect(page.get_by_role("link", name=reference)).to_have_count(0)

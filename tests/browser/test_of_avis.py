"""An OF gestionnaire gives its avis on the candidatures received: one candidature from
its page (« Non retenue » without a motif is refused, « Retenue » is recorded), then two
at once from the list."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

OF = "of@demo.fr"


def test_of_gives_avis_one_by_one_and_in_bulk(open_as, checked):
    page = open_as(OF)
    page.goto("/")
    checked.page(page)
    page.get_by_role("link", name="Candidatures reçues").click()
    checked.page(page, shot="of-candidatures-recues")
    expect(page.locator("header [aria-current=page]")).to_have_text("Candidatures reçues")
    rows = page.locator("tbody tr")
    first = rows.first.locator("td a").first.text_content().strip()
    rows.first.get_by_role("link", name=first).click()
    checked.page(page)

    avis = page.get_by_role("group", name="Avis")
    avis.get_by_label("Non retenue").check()
    page.get_by_role("button", name="Enregistrer l'avis").click()
    checked.page(page)
    expect(page.locator(".alert-danger")).to_be_visible()
    page.get_by_role("group", name="Avis").get_by_label("Retenue", exact=True).check()
    page.get_by_role("button", name="Enregistrer l'avis").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator("#etat")).to_have_text("Retenue")

    page.get_by_role("link", name="Candidatures reçues").click()
    checked.page(page)
    references = [rows.nth(i).locator("td a").first.text_content().strip() for i in (0, 1)]
    assert first not in references
    for reference in references:
        page.get_by_label(f"Choisir {reference}").check()
    page.get_by_label("Avis pour les candidatures cochées :").select_option(label="Non retenue")
    page.get_by_label("Motif").fill("Prérequis non atteints.")
    page.get_by_role("button", name="Enregistrer les avis").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    for reference in references:
        expect(page.get_by_label(f"Choisir {reference}")).to_have_count(0)

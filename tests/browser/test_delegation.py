"""The gestionnaire of a SIRET in the démarche « Mon Activité Formation » delegates a role
to a third party (who receives a link), sees the delegation proposed, then revokes it."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

GESTIONNAIRE = "referent@demo.fr"
THIRD_PARTY_SIRET = "73282932000074"
THIRD_PARTY_EMAIL = "tiers.navigateur@exemple.fr"


def test_gestionnaire_delegates_and_revokes(open_as, checked):
    page = open_as(GESTIONNAIRE)
    page.goto("/habilitations/")
    checked.page(page, shot="habilitations")
    page.get_by_label("SIRET de l'établissement").select_option(index=0)
    page.get_by_label("SIRET du tiers").fill(THIRD_PARTY_SIRET)
    page.get_by_label("Courriel du tiers").fill("pas-une-adresse")
    page.get_by_role("button", name="Proposer la délégation").click()
    checked.page(page)
    expect(page.locator(".alert-danger").first).to_be_visible()

    page.get_by_label("SIRET du tiers").fill(THIRD_PARTY_SIRET)
    page.get_by_label("Courriel du tiers").fill(THIRD_PARTY_EMAIL)
    page.get_by_label("Rôle délégué").select_option(index=0)
    page.get_by_label("Date de fin (facultative)").fill("2027-06-30")
    page.get_by_role("button", name="Proposer la délégation").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_contain_text(THIRD_PARTY_EMAIL)
    row = page.locator("tr", has_text=THIRD_PARTY_EMAIL)
    expect(row).to_contain_text("proposee")

    row.get_by_role("button", name="Révoquer").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator("tr", has_text=THIRD_PARTY_EMAIL)).to_contain_text("revoquee")
    expect(page.locator("tr", has_text=THIRD_PARTY_EMAIL).get_by_role(
        "button", name="Révoquer")).to_have_count(0)

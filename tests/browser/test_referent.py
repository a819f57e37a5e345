"""A structure's référent validates a pending account request, choosing its profile, then
changes the rights of a member of the structure."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

REFERENT = "referent@demo.fr"


def test_referent_validates_a_request_and_sets_rights(open_as, checked):
    page = open_as(REFERENT)
    page.goto("/")
    checked.page(page)
    page.get_by_role("link", name="Ma structure").click()
    checked.page(page, shot="referent-ma-structure")
    request = page.locator("h2:has-text('Demandes de compte en attente') + div")
    name = request.locator("strong").first.text_content().strip()
    profile = request.locator("select").first
    profile.select_option(index=1)
    request.get_by_role("button", name="Valider").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    expect(page.locator("h2:has-text('Demandes de compte en attente') + div strong",
                        has_text=name)).to_have_count(0)

    member = page.locator("tr", has_text=name).first
    member.get_by_role("link", name="Droits").click()
    checked.page(page)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Droits de {name}")
    select = page.locator("main form select").first
    options = select.locator("option")
    current = select.input_value()
    other = next(value for value in (options.nth(i).get_attribute("value")
                                     for i in range(options.count())) if value != current)
    select.select_option(other)
    page.get_by_role("button", name="Enregistrer").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_be_visible()
    page.locator("tr", has_text=name).first.get_by_role("link", name="Droits").click()
    checked.page(page)
    expect(page.locator("main form select").first).to_have_value(other)

"""A Cap Métiers moderator, in the administration: opens the moderation queue from the
menu, asks the OF for a complement on one formation (with the comment it will receive),
then validates another one from the queue."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MODERATOR = "moderateur@demo.fr"


def test_moderator_asks_a_complement_then_validates_from_the_queue(open_as, checked):
    page = open_as(MODERATOR)
    page.goto("/admin/")
    checked.page(page)
    page.get_by_role("button", name="Offre de formation").click()
    page.get_by_role("link", name="File de modération").click()
    checked.page(page, shot="admin-file-moderation", phone_shot=True)
    expect(page.locator("header [aria-current=page]")).to_have_text("File de modération")

    rows = page.locator("#action_form tbody tr")
    first, second = (rows.nth(i).locator("td").nth(1).locator("a").first.text_content().strip()
                     for i in (0, 1))
    page.get_by_label(f"Sélectionner {first}").check()
    page.get_by_label("Commentaire").fill("Merci de préciser les prérequis d'entrée.")
    page.get_by_role("button", name="Demander un complément").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_contain_text(f"Complément demandé : {first}")
    expect(page.get_by_label(f"Sélectionner {first}")).to_have_count(0)

    page.get_by_label(f"Sélectionner {second}").check()
    page.get_by_role("button", name="Valider").click()
    checked.page(page)
    expect(page.locator(".alert-success")).to_contain_text("1 formation(s) validée(s)")
    expect(page.get_by_label(f"Sélectionner {second}")).to_have_count(0)

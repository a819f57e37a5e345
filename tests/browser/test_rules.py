"""The policy owner (responsable des règles) edits a rule file in the administration,
tries it on the real data (the try-out runs in the background: the page follows it until
its bar is full and shows the comparison), activates it with a comment, then goes back to
the previous version from the history."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

POLICY_OWNER = "regles@demo.fr"
OLD = "il part à la corbeille après"
NEW = "il sera mis à la corbeille après"


def test_policy_owner_edits_tries_activates_and_rolls_back(open_as, checked):
    page = open_as(POLICY_OWNER)
    page.goto("/admin/regles/")
    checked.page(page)
    page.locator("h2", has_text="deadlines").locator("xpath=..").get_by_role(
        "link", name="Modifier et essayer").click()
    checked.page(page)
    content = page.get_by_label("Fichier rules/deadlines.yaml")
    text = content.input_value()
    assert OLD in text
    content.fill(text.replace(OLD, NEW))
    page.get_by_role("button", name="Essayer").click()
    checked.page(page)
    bar = page.get_by_role("progressbar", name="Objets examinés")
    expect(bar).to_have_attribute("aria-valuenow", "100", timeout=60_000)
    expect(page.locator("#essai")).to_contain_text("Comparaison avec la")
    page.locator("#essai").scroll_into_view_if_needed()
    checked.page(page, shot="regles-essai")

    expect(page.get_by_label("Fichier rules/deadlines.yaml")).to_have_value(
        text.replace(OLD, NEW))
    page.get_by_label("Commentaire de la version (obligatoire pour activer)").fill(
        "Message du brouillon reformulé")
    page.get_by_role("button", name="Activer").click()
    checked.page(page)
    expect(page.locator("#essai .alert-success")).to_contain_text("activée", timeout=60_000)
    checked.page(page)

    page.get_by_role("link", name="← Délais et échéances").click()
    checked.page(page)
    page.get_by_role("link", name="Historique").click()
    checked.page(page)
    previous = page.locator("tbody tr").nth(1)
    version = previous.locator("td").first.text_content().strip()
    previous.get_by_label(f"Pourquoi revenir à la version {version} ?").fill("Retour arrière")
    previous.get_by_role("button", name="Revenir à cette version").click()
    checked.page(page)
    expect(page.locator("#essai .alert-success")).to_contain_text(
        f"Retour à la version {version}", timeout=60_000)
    checked.page(page)

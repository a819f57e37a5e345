"""Every screen of the administration and the pages of every account, opened in the
browser: each passes axe (WCAG 2.1 A/AA), repeats no id and fits 390 px (Checked.page)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ADMIN_LISTS = [
    "accountrequest", "affiliationrequest", "candidate", "candidature", "certification",
    "commune", "delegation", "entrypoint", "formation", "habilitation", "jobrun",
    "membership", "mfarecoverycode", "moderation-formations", "outboundmessage",
    "personaldataaccess", "ratelimit", "referencingrequest", "regles", "rulesetversion",
    "session", "structure", "taches", "token", "transitionlog", "user", "usersession",
    "workflows",
]
SHOTS = {"formation": "admin-formations", "workflows": "admin-workflows"}


def test_public_pages(anonymous, checked):
    page = anonymous
    page.goto("/connexion")
    checked.page(page, shot="connexion")
    page.get_by_role("button", name="Se connecter").click()
    checked.page(page)
    email = page.get_by_label("Adresse électronique")
    expect(email).to_have_attribute("aria-invalid", "true")
    page.get_by_role("link", name="Créer un compte").click()
    checked.page(page)
    page.goto("/mot-de-passe-oublie")
    checked.page(page)
    response = page.goto("/favicon.ico")
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg")
    page.goto("/connexion")
    checked.page(page)


@pytest.mark.parametrize("email", ["of@demo.fr", "prescripteur2@demo.fr", "referent@demo.fr"])
def test_account_pages(open_as, checked, email):
    page = open_as(email)
    for path in ("/", "/mon-compte", "/mes-structures"):
        page.goto(path)
        checked.page(page)
    page.set_viewport_size({"width": 390, "height": 844})
    menu = page.get_by_role("button", name="Menu")
    links = page.locator("#menu-principal")
    expect(links).to_be_hidden()
    menu.click()
    expect(links).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.get_by_role("link", name="Mon compte").click()
    checked.page(page)
    expect(page.locator("header [aria-current=page]")).to_have_text("Mon compte")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Aller au contenu principal")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()


def test_every_admin_screen(open_as, checked, server):
    page = open_as("admin@demo.fr")
    for name in ADMIN_LISTS:
        page.goto(f"/admin/{name}/")
        checked.page(page, shot=SHOTS.get(name))
    page.goto("/admin/formation/")
    checked.page(page)
    title = server.rows("SELECT intitule FROM formation ORDER BY id LIMIT 1")[0][0]
    word = max(title.split(), key=len)
    page.get_by_label("Rechercher").fill(word)
    page.get_by_role("button", name="Chercher").click()
    checked.page(page)
    rows = page.locator("table.model-list tbody tr")
    expect(rows.first).not_to_contain_text("Il n'y a aucun élément")
    rows.first.get_by_title("Afficher L'enregistrement").click()
    checked.page(page)
    page.go_back()
    checked.page(page)
    rows.first.get_by_title("Modifier enregistrement").click()
    checked.page(page)


# Two texts overlap when their boxes share more than 1 px across and 3 px down (the two
# lines of a state box touch by a pixel or two: line boxes include the leading).
OVERLAPS = """() => Array.from(document.querySelectorAll('svg.bo-diagramme')).flatMap(svg => {
  const frame = svg.getBoundingClientRect();
  const boxes = Array.from(svg.querySelectorAll('text')).map(t => [t.textContent, t.getBoundingClientRect()]);
  const faults = [];
  boxes.forEach(([text, r], i) => {
    if (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1 || r.bottom > frame.bottom + 1)
      faults.push(svg.getAttribute('aria-label') + ' : « ' + text + ' » coupé');
    boxes.slice(i + 1).forEach(([other, o]) => {
      const w = Math.min(r.right, o.right) - Math.max(r.left, o.left);
      const h = Math.min(r.bottom, o.bottom) - Math.max(r.top, o.top);
      if (w > 1 && h > 3) faults.push(svg.getAttribute('aria-label') + ' : « ' + text + ' » sur « ' + other + ' »');
    });
  });
  return faults;
})"""


def test_workflow_diagrams_are_readable(open_as, checked):
    """Graphviz lays the diagrams out: no label overlaps another, none is cut."""
    page = open_as("moderateur@demo.fr")
    page.goto("/admin/workflows/")
    checked.page(page)
    diagrams = page.locator("svg.bo-diagramme")
    expect(diagrams).to_have_count(9)
    faults = page.evaluate(OVERLAPS)
    assert not faults, "\n".join(faults)

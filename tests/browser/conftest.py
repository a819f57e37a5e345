"""The browser suite: the real application in a real Chromium, driven by Playwright.

One server for the whole run: ``backoffice db upgrade``, ``backoffice demo-data`` and
``backoffice serve`` (the same commands as ``make run``) over a fresh SQLite file, with the
clock set (``--at``) to the instant the demo data is generated for, on a free port. Debian's
Chromium (``/usr/bin/chromium``) is launched headless; Playwright's own browser download
is never used.

Every document a test loads is checked by ``Checked.page`` (see ``Pages``): axe-core
(shipped by axe-playwright-python) finds no WCAG 2.1 A/AA violation, and at 390 px wide the
page does not scroll sideways (``document.documentElement.scrollWidth <= 390``). A test
that loaded a page without checking it fails at teardown. ``shot`` writes a PNG of the
screen into ``docs/screens/`` for the README.

One browser context per demo account, logged in once (the staff's second factor is a TOTP
code of the fixed clock, and a code is accepted once): tests of one role share its
cookies, as one person's tabs would.

Every module carries ``pytestmark = pytest.mark.browser``. Run alone with ``make
test-browser`` (``pytest -m browser tests/browser``); the plain ``pytest`` run leaves these
tests out (``-m 'not browser'`` in pyproject.toml), so CI runs them once.
"""
from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyotp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENS = ROOT / "docs" / "screens"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
AT = "2026-11-23T10:30"  # Paris time: the demo data's « now » (README, Demo data)
AT_UTC = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)
DEMO_SCALE = "0.02"
PASSWORD = "Demo-Formation-2026"
TOTP_SECRET = "DEMOFORMATIONNOUVELLEAQUITAINE22"
STAFF = {"admin@demo.fr", "moderateur@demo.fr", "regles@demo.fr"}
DESKTOP = {"width": 1280, "height": 900}
PHONE_WIDTH = 390
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(autouse=True)
def app_context():
    """The unit tests' application and emptied tables (tests/conftest.py) are not used
    here: the server has its own database."""
    yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _backoffice(*args: str) -> list[str]:
    return [sys.executable, "-c", "from backoffice.cli import main; main()", *args]


class Server:
    def __init__(self, url: str, database: Path):
        self.url, self.database = url, database

    def rows(self, sql: str, *params) -> list[tuple]:
        """Rows of the server's database (read only), to pick the demo data a flow uses."""
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True) as connection:
            return connection.execute(sql, params).fetchall()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} absent : apt-get install -y chromium")
    home = tmp_path_factory.mktemp("serveur")
    database = home / "backoffice.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}",
           "BACKOFFICE_INSTANCE": str(home), "BACKOFFICE_DEFINITIONS": str(ROOT),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("TEST_DATABASE_URL", None)
    for command in (("db", "upgrade"), ("demo-data", "--scale", DEMO_SCALE, "--at", AT)):
        subprocess.run(_backoffice(*command), env=env, cwd=home, check=True,
                       stdout=subprocess.DEVNULL)
    port = _free_port()
    log = open(home / "serveur.log", "w")
    server = subprocess.Popen(_backoffice("serve", "--port", str(port), "--at", AT),
                              env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url + "/connexion", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail("le serveur s'est arrêté : " + (home / "serveur.log").read_text())
            time.sleep(0.2)
    yield Server(url, database)
    server.terminate()
    server.wait(timeout=20)
    log.close()
    errors = [line for line in (home / "serveur.log").read_text().splitlines()
              if '" 500 ' in line or "Traceback" in line]
    assert not errors, "erreurs du serveur : " + "\n".join(errors)


@pytest.fixture(scope="session")
def base_url(server):
    return server.url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def axe():
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


class Checked:
    """The documents loaded in one test and their checks (axe, 390 px)."""

    def __init__(self, axe):
        self.axe = axe
        self.unchecked: list[str] = []
        self.checked: list[str] = []

    def watch(self, page) -> None:
        page.on("load", lambda p: self.unchecked.append(p.url))

    def page(self, page, shot: str | None = None, phone_shot: bool = False) -> None:
        """axe finds no WCAG 2.1 A/AA violation; no id is repeated; at 390 px the page
        does not scroll sideways. ``shot``: a PNG of the screen at desktop width into
        docs/screens/ (``phone_shot``: one at 390 px too, ``<shot>-telephone.png``)."""
        page.wait_for_load_state("load")
        page.mouse.move(0, 0)  # no hover left over from the last click
        results = self.axe.run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
        violations = results.response["violations"]
        assert not violations, f"{page.url} : axe\n" + "\n".join(
            f"- {v['id']} ({v['impact']}) : {v['help']} — "
            + " | ".join(" ".join(node["target"]) + " : " + node.get("failureSummary", "")
                         .replace("\n", " ") for node in v["nodes"][:4])
            for v in violations)
        duplicates = page.evaluate("""() => {
            const seen = {}, twice = new Set();
            document.querySelectorAll('[id]').forEach(e => { if (seen[e.id]) twice.add(e.id); seen[e.id] = 1; });
            return Array.from(twice); }""")
        assert not duplicates, f"{page.url} : identifiants répétés {duplicates}"
        if shot:
            SCREENS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENS / f"{shot}.png"))
        size = page.viewport_size
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        try:
            page.wait_for_function(f"window.innerWidth === {PHONE_WIDTH}")
            if shot and phone_shot:
                page.screenshot(path=str(SCREENS / f"{shot}-telephone.png"))
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE_WIDTH:
                culprits = page.evaluate(f"""() => {{
                    const clipped = e => {{ for (let p = e.parentElement; p; p = p.parentElement)
                        if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return true;
                        return false; }};
                    return Array.from(document.querySelectorAll('body *'))
                        .filter(e => e.getBoundingClientRect().right > {PHONE_WIDTH} + 1 && !clipped(e))
                        .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id); }}""")
            assert width <= PHONE_WIDTH, f"{page.url} : {width} px de large à {PHONE_WIDTH} px ({culprits})"
        finally:
            page.set_viewport_size(size)
        self.checked.append(page.url)
        self.unchecked.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.call_failed = report.failed
    return report


@pytest.fixture
def checked(axe, request):
    checks = Checked(axe)
    yield checks
    if not getattr(request.node, "call_failed", True):
        assert not checks.unchecked, f"pages chargées sans vérification : {checks.unchecked}"


class Accounts:
    """One logged-in browser context per demo account, for the whole run."""

    def __init__(self, browser, base_url):
        self.browser, self.base_url = browser, base_url
        self.contexts: dict[str, object] = {}
        self.totp_step = 0

    def context(self, email: str):
        if email not in self.contexts:
            context = self.browser.new_context(base_url=self.base_url, viewport=DESKTOP,
                                               locale="fr-FR", timezone_id="Europe/Paris")
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.goto("/connexion")
            page.get_by_label("Adresse électronique").fill(email)
            page.get_by_label("Mot de passe").fill(PASSWORD)
            page.get_by_role("button", name="Se connecter").click()
            page.wait_for_load_state("load")
            if email in STAFF:
                code = pyotp.TOTP(TOTP_SECRET).at(AT_UTC)
                page.get_by_label("Code").fill(code)
                page.get_by_role("button", name="Valider").click()
                page.wait_for_load_state("load")
            assert "/connexion" not in page.url, f"connexion de {email} refusée : {page.url}"
            page.close()
            self.contexts[email] = context
        return self.contexts[email]


@pytest.fixture(scope="session")
def accounts(browser, base_url):
    accounts = Accounts(browser, base_url)
    yield accounts
    for context in accounts.contexts.values():
        context.close()


@pytest.fixture
def open_as(accounts, checked):
    """``open_as(email)``: a new tab of that account's browser, its loads watched."""
    pages = []

    def open_as(email: str):
        page = accounts.context(email).new_page()
        checked.watch(page)
        pages.append(page)
        return page

    yield open_as
    for page in pages:
        page.close()


@pytest.fixture
def anonymous(browser, base_url, checked):
    context = browser.new_context(base_url=base_url, viewport=DESKTOP, locale="fr-FR")
    page = context.new_page()
    checked.watch(page)
    yield page
    context.close()


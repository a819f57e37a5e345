"""Security headers on every response and cookie flags (issue 11, defect 7).

What a browser observes: every answer (pages, static files, JSON, redirects, error pages)
carries a Content-Security-Policy with a fresh nonce and no 'unsafe-inline', refuses to be
framed, disables sniffing, keeps the referrer on this site and denies powerful features;
pages are never cached; HSTS only over HTTPS; in production the session cookie is
``__Host-session``, Secure. And every page type works under that policy: crawling the
pages each role reaches finds no <script>/<style> without the request's nonce, no
``style="…"`` and no ``on…="…"`` attribute (the policy would block them).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet

from backoffice import clock, create_app, rules_tryout
from backoffice.config import TestingConfig
from backoffice.extensions import db as _db
from backoffice.models import JobRun, StaffRole, StructureKind, Token, TokenPurpose
from tests.conftest import csrf_token, login
from tests.factories import (PASSWORD, create_candidature, create_delegation, create_entry_point,
                             create_habilitation, create_member, create_publishable_formation,
                             create_published_session, create_referencing_request,
                             create_staff, create_structure)

NONCE_RE = re.compile(r"'nonce-([^']+)'")
EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def assert_security_headers(response, url: str = "") -> None:
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    directives = dict((d.split(" ", 1) + [""])[:2] for d in policy.split("; ") if d)
    assert directives.get("frame-ancestors") == "'none'", (url, policy)
    for name in ("script-src", "style-src"):
        assert name in directives and "unsafe" not in directives[name], (url, policy)
    assert directives.get("default-src") == "'self'", (url, policy)
    assert directives.get("object-src") == "'none'", (url, policy)
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, (url, name, headers.get(name))
    assert "camera=()" in headers.get("Permissions-Policy", ""), url
    assert "geolocation=()" in headers.get("Permissions-Policy", ""), url


def nonce_of(response) -> str | None:
    match = NONCE_RE.search(response.headers.get("Content-Security-Policy", ""))
    return match.group(1) if match else None


class InlineCodeFinder(HTMLParser):
    """What the policy would block in a page: <script>/<style> without the nonce, style and
    event-handler attributes."""

    def __init__(self, nonce: str | None):
        super().__init__()
        self.nonce = nonce
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag in ("script", "style") and (not self.nonce or names.get("nonce") != self.nonce):
            self.problems.append(self.get_starttag_text())
        for name, _value in attrs:
            if name == "style" or re.fullmatch(r"on[a-z]+", name):
                self.problems.append(self.get_starttag_text())

    handle_startendtag = handle_starttag


def blocked_inline_code(html: str, nonce: str | None) -> list[str]:
    finder = InlineCodeFinder(nonce)
    finder.feed(html)
    return finder.problems


LINK_RE = re.compile(r'<a\b[^>]*\bhref="([^"#]*)', re.I)
SKIPPED = ("/static/", "/admin/static/", "/deconnexion")


def crawl(client, starts: list[str], limit: int = 400) -> dict[str, list[str]]:
    """GET every same-site page reachable from ``starts`` (one URL per path), checking the
    headers of each answer; return the blocked inline code found per page."""
    seen: set[str] = set()
    queue = list(starts)
    found: dict[str, list[str]] = {}
    while queue and len(seen) < limit:
        url = queue.pop(0)
        path = urlsplit(url).path
        if path in seen:
            continue
        seen.add(path)
        response = client.get(url)
        assert response.status_code != 500, url
        assert_security_headers(response, url)
        assert response.headers["Cache-Control"] == "no-store", url
        if response.status_code in (301, 302, 303):
            location = urlsplit(response.headers["Location"])
            queue.append(location.path + ("?" + location.query if location.query else ""))
            continue
        if response.mimetype != "text/html":
            continue
        problems = blocked_inline_code(response.text, nonce_of(response))
        if problems:
            found[url] = problems
        for link in LINK_RE.findall(response.text):
            link = link.replace("&amp;", "&")
            if link.startswith("/") and not link.startswith("//") \
                    and not link.startswith(SKIPPED) and "export" not in link:
                queue.append(link)
    assert len(seen) < limit, "crawl limit reached"
    return found


def get(client, url: str):
    """GET ``url``, the body read and the file closed (static files are streamed)."""
    response = client.get(url)
    response.get_data()
    response.close()
    return response


# -- headers --------------------------------------------------------------------------------
def test_anonymous_pages_static_files_and_errors_carry_the_headers(client, db):
    """The login page, a redirect, a static file, Flask-Admin's static files, a 404 and a
    refused form all carry the headers; each page gets its own nonce."""
    answers = {url: get(client, url) for url in (
        "/connexion", "/", "/static/forms.js",
        "/admin/static/vendor/jquery.min.js", "/page-inexistante")}
    answers["csrf"] = client.post("/connexion", data={"email": "a@exemple.fr"})
    assert [r.status_code for r in answers.values()] == [200, 302, 200, 200, 404, 400]
    for url, response in answers.items():
        assert_security_headers(response, url)
    first, second = client.get("/connexion"), client.get("/connexion")
    assert nonce_of(first) and nonce_of(second) and nonce_of(first) != nonce_of(second)
    assert f'nonce="{nonce_of(first)}"' in first.text


def test_pages_are_never_cached_but_static_files_are(client, db):
    """Cache-Control: no-store on a logged-in user's pages, JSON and errors and on any page
    with a CSRF token (the login page); static files stay cacheable."""
    assert client.get("/connexion").headers["Cache-Control"] == "no-store"
    user = create_staff(StaffRole.ADMIN)
    db.session.commit()
    login(client, user)
    for url in ("/", "/mon-compte", "/admin/", "/admin/formation/", "/page-inexistante"):
        response = client.get(url)
        assert response.headers["Cache-Control"] == "no-store", url
        assert_security_headers(response, url)
    for url in ("/static/forms.js", "/admin/static/vendor/jquery.min.js"):
        response = get(client, url)
        assert_security_headers(response, url)
        assert "no-store" not in response.headers.get("Cache-Control", ""), url


def test_hsts_only_over_https(app, db):
    """Strict-Transport-Security on HTTPS answers only; a client's own X-Forwarded-Proto
    does not make plain http look secure."""
    plain = app.test_client().get("/connexion", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in plain.headers
    secure = app.test_client().get("/connexion", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == \
        "max-age=31536000; includeSubDomains"
    assert_security_headers(secure)


def test_development_cookie_is_plain_session_over_http(client, db):
    """Development over http keeps working: a « session » cookie without Secure."""
    user = create_member(create_structure(), profile_of="gestionnaire_of_general")
    db.session.commit()
    login(client, user)
    cookie = client.get_cookie("session")
    assert cookie is not None and not cookie.secure
    assert client.get("/").status_code == 200


@pytest.fixture
def production(monkeypatch, database_url):
    """BACKOFFICE_ENV=production, the cookie settings left unset (their defaults)."""
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    return type("Production", (TestingConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "une-cle-de-production",
        "SESSION_COOKIE_SECURE": None, "SESSION_COOKIE_NAME": None,
        "REMEMBER_COOKIE_SECURE": None, "PUBLIC_BASE_URL": "https://localhost",
        "TRUSTED_HOSTS": None, "NIR_ENCRYPTION_KEYS": Fernet.generate_key().decode()})


@pytest.fixture
def make_app():
    """create_app for a test; the engine of each app made is disposed afterwards."""
    made = []

    def make(config):
        made.append(create_app(config))
        return made[-1]
    yield make
    for other in made:
        with other.app_context():
            _db.session.remove()
            _db.engine.dispose()


def test_production_session_cookie_is_secure_with_host_prefix(production, make_app, db):
    """In production the session cookie is « __Host-session »: Secure, HttpOnly, Path=/,
    no Domain; the remember-me cookie is Secure too. Logging in over HTTPS works."""
    app = make_app(production)
    assert (app.config["SESSION_COOKIE_NAME"], app.config["SESSION_COOKIE_SECURE"],
            app.config["REMEMBER_COOKIE_SECURE"]) == ("__Host-session", True, True)
    user = create_member(create_structure(), profile_of="gestionnaire_of_general")
    db.session.commit()
    client = app.test_client()
    page = client.get("/connexion", base_url="https://localhost")
    # Over HTTPS, Flask-WTF also wants a same-site Referer: Referrer-Policy same-origin
    # keeps sending it.
    response = client.post("/connexion", base_url="https://localhost", data={
        "email": user.email, "password": PASSWORD, "csrf_token": csrf_token(page.text)},
        headers={"Referer": "https://localhost/connexion"})
    assert response.status_code == 302
    for set_cookie in (page.headers["Set-Cookie"], response.headers["Set-Cookie"]):
        assert set_cookie.startswith("__Host-session=")
        attributes = [part.strip().lower() for part in set_cookie.split(";")[1:]]
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= set(attributes)
        assert not any(a.startswith("domain") for a in attributes)
    assert client.get_cookie("session") is None
    assert client.get("/", base_url="https://localhost").status_code == 200


def test_production_refuses_a_host_cookie_without_secure(production, make_app):
    """« __Host- » without Secure would be dropped by browsers: start-up stops instead."""
    config = type("Broken", (production,), {"SESSION_COOKIE_SECURE": False,
                                            "SESSION_COOKIE_NAME": "__Host-session"})
    with pytest.raises(RuntimeError, match="__Host-"):
        make_app(config)
    plain = type("PlainHttp", (production,), {"SESSION_COOKIE_SECURE": False})
    assert make_app(plain).config["SESSION_COOKIE_NAME"] == "session"


# -- no inline code the policy would block ---------------------------------------------------
TEMPLATES = Path(__file__).resolve().parent.parent / "backoffice" / "templates"


def test_templates_have_no_inline_code_the_policy_blocks():
    """Every template (any branch, rendered or not): <script> carries the nonce, no
    <style> element, no style or on… attribute. E-mails are not web pages."""
    problems = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        if "emails" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        for match in re.finditer(r"<script\b[^>]*>", source):
            if "csp_nonce()" not in match.group(0) and "admin_csp_nonce_attribute" \
                    not in match.group(0):
                problems.append(f"{path.name}: {match.group(0)}")
        markup = re.sub(r"{{.*?}}|{%.*?%}|{#.*?#}", "", source, flags=re.S)  # HTML only
        for pattern in (r"<style\b", r"\sstyle\s*=", r"\son[a-z]+\s*="):
            problems += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, markup)]
    assert problems == []


@pytest.fixture
def world(db):
    """An OF with a catalogue and a candidature from a prescriber, and the rows the admin
    lists show (so that their edit and details pages are crawled too)."""
    of = create_structure(raison_sociale="Organisme du crawl")
    prescriber_structure = create_structure(kind=StructureKind.PRESCRIPTEUR,
                                            prescriber_type="france_travail")
    users = {
        "of": create_member(of, profile_of="gestionnaire_of_general", is_referent=True),
        "prescripteur": create_member(prescriber_structure,
                                      profile_prescripteur="prescripteur_n3",
                                      is_referent=True),
        "moderateur": create_staff(StaffRole.MODERATEUR),
        "admin": create_staff(StaffRole.ADMIN),
        "regles": create_staff(StaffRole.RESPONSABLE_REGLES),
    }
    create_publishable_formation(of)
    session = create_published_session(
        formation=create_publishable_formation(of, state="validee").sessions[0].formation)
    create_entry_point(session=session)
    create_candidature(session=session, prescriber_structure=prescriber_structure,
                       prescriber_user=users["prescripteur"])
    create_publishable_formation(of, state="en_attente_moderation")  # moderation queue
    create_habilitation(user=users["of"])
    create_delegation(users["of"], of.siret)
    create_referencing_request(requester=users["prescripteur"])
    Token.issue(purpose=TokenPurpose.REINITIALISATION, lifetime=dt.timedelta(hours=1),
                user=users["of"])  # a list with row and bulk delete buttons
    db.session.commit()
    return users


@pytest.mark.parametrize("role", [None, "of", "prescripteur", "moderateur", "admin",
                                  "regles"])
def test_every_page_a_role_reaches_runs_under_the_policy(app, db, world, role):
    """Front pages and admin lists, create, edit and details pages, error pages included:
    nothing the policy would block, headers on every answer."""
    client = app.test_client()
    if role:
        assert login(client, world[role]).status_code == 302
    starts = ["/", "/admin/", "/connexion", "/inscription", "/page-inexistante"]
    assert crawl(client, starts) == {}


def test_rule_tryout_progress_runs_under_the_policy(client, db):
    """The try-out fragment the rules page inserts while a try-out runs (its progress bar
    included) has no style attribute."""
    user = create_staff(StaffRole.RESPONSABLE_REGLES)
    state = {"jeu": "publication", "references": [], "auteur": "Agnès Vidal", "total": 1000,
             "traites": 200, "resultat": None}
    run = JobRun(job=rules_tryout.JOB_NAME, run_for=clock.now(), started_at=clock.now(),
                 status="en_cours", dry_run=True, summary=json.dumps(state))
    db.session.add(run)
    db.session.commit()
    login(client, user)
    response = client.get(f"/admin/regles/publication/essais/{run.id}?format=json")
    assert_security_headers(response)
    fragment = response.get_json()["html"]
    assert 'data-largeur="20"' in fragment
    assert blocked_inline_code(fragment, nonce_of(response)) == []

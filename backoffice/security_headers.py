"""HTTP security headers on every response, and the session cookie's flags (ASVS V3.4, V14.4).

Every response (pages, JSON, files, redirects, error pages) carries:

* ``Content-Security-Policy``: scripts and styles only from this origin or carrying the
  request's nonce — no ``'unsafe-inline'``, no ``'unsafe-eval'``, no other origin
  (Flask-Admin's jQuery and Bootstrap come from its own static folder); ``frame-ancestors
  'none'``, ``form-action 'self'``, ``base-uri 'none'``, ``object-src 'none'``. A template
  writes ``<script nonce="{{ csp_nonce() }}" src="…">``; Flask-Admin gets the same nonce
  through ``csp_nonce_generator``. The policy also refuses ``style="…"`` and ``on…="…"``
  attributes: use a class of ``static/backoffice.css``, or a data attribute read by a static
  script (``data-largeur`` for a progress bar, ``data-confirmer`` for a confirmation).
  Setting ``element.style`` from a script stays allowed.
* ``X-Frame-Options: DENY`` (older browsers), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin`` (no URL leaves the site, but Flask-WTF's check of the
  Referer on HTTPS posts keeps working — ``no-referrer`` would refuse every form), a
  ``Permissions-Policy`` denying every powerful feature, ``Cross-Origin-Opener-Policy:
  same-origin``.
* ``Cache-Control: no-store`` on everything but static files: a page shows a logged-in
  user's data or carries a CSRF token (or both), and neither may stay in a cache.
* ``Strict-Transport-Security`` (``HSTS_MAX_AGE``) only when the request came over HTTPS,
  i.e. ``request.is_secure`` — behind a proxy, ProxyFix with the configured trusted hops
  sets the scheme; a client's own ``X-Forwarded-Proto`` is never trusted.

The nonce is drawn on first use in a request (``secrets``, 128 bits) and kept in the
request's WSGI environ (not on ``g``, which an application context may share between
requests), so every template and Flask-Admin of one request share it, whatever ran before
(an aborted ``before_request`` included); a response that used none gets a policy without.

Cookies: in production (``BACKOFFICE_ENV=production``, as ``_check_production_settings``)
the session and remember-me cookies are ``Secure`` and the session cookie is named
``__Host-session`` (Secure, ``Path=/``, no ``Domain``: only this host, over HTTPS, gets
it). Development over http keeps a plain ``session`` cookie. Each setting can be forced by
its environment variable; a ``__Host-`` name without Secure, or with a domain or a path,
stops start-up (the browser would silently drop the cookie: nobody could log in).
"""
from __future__ import annotations

import os
import secrets

from flask import Flask, Response, current_app, has_request_context, request

CSP_TEMPLATE = ("default-src 'self'; script-src 'self'{nonce}; style-src 'self'{nonce}; "
                "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                "object-src 'none'; base-uri 'none'; form-action 'self'; "
                "frame-ancestors 'none'")
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "browsing-topics", "camera", "display-capture",
    "geolocation", "gyroscope", "hid", "magnetometer", "microphone", "midi", "payment",
    "serial", "usb"))
FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}
HOST_PREFIX = "__Host-"
NONCE_KEY = "backoffice.csp_nonce"  # in the WSGI environ: one per request


def csp_nonce() -> str:
    """The nonce of the current request (the same for every call within it)."""
    if not has_request_context():
        return ""  # e.g. a page rendered by a job: no response, no policy
    environ = request.environ
    if NONCE_KEY not in environ:
        environ[NONCE_KEY] = secrets.token_urlsafe(16)
    return environ[NONCE_KEY]


def init_app(app: Flask) -> None:
    _configure_cookies(app, production=os.environ.get("BACKOFFICE_ENV") == "production")
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_set_headers)


def _configure_cookies(app: Flask, *, production: bool) -> None:
    config = app.config
    if config.get("SESSION_COOKIE_SECURE") is None:
        config["SESSION_COOKIE_SECURE"] = production
    if config.get("REMEMBER_COOKIE_SECURE") is None:
        config["REMEMBER_COOKIE_SECURE"] = config["SESSION_COOKIE_SECURE"]
    if not config.get("SESSION_COOKIE_NAME"):
        config["SESSION_COOKIE_NAME"] = (HOST_PREFIX + "session" if config["SESSION_COOKIE_SECURE"]
                                         else "session")
    path = config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/"
    if config["SESSION_COOKIE_NAME"].startswith(HOST_PREFIX) and (
            not config["SESSION_COOKIE_SECURE"] or config.get("SESSION_COOKIE_DOMAIN")
            or path != "/"):
        raise RuntimeError(
            f"SESSION_COOKIE_NAME « {config['SESSION_COOKIE_NAME']} » : un cookie « __Host- » "
            "exige SESSION_COOKIE_SECURE=1, aucun SESSION_COOKIE_DOMAIN et le chemin /")


def _set_headers(response: Response) -> Response:
    headers = response.headers
    nonce = f" 'nonce-{request.environ[NONCE_KEY]}'" if NONCE_KEY in request.environ else ""
    headers["Content-Security-Policy"] = CSP_TEMPLATE.format(nonce=nonce)
    headers.update(FIXED_HEADERS)
    if not _is_static_file():
        headers["Cache-Control"] = "no-store"
    max_age = current_app.config["HSTS_MAX_AGE"]
    if request.is_secure and max_age:
        headers["Strict-Transport-Security"] = f"max-age={max_age}; includeSubDomains"
    return response


def _is_static_file() -> bool:
    """Flask's and Flask-Admin's static folders: the same public files for everyone."""
    endpoint = request.endpoint or ""
    return endpoint == "static" or endpoint.endswith(".static")

"""Links written into e-mails: built from the one configured public address, and sealed
while they wait in the outbound queue when they carry a secret.

* ``public_url(endpoint, **values)`` builds an absolute URL from ``PUBLIC_BASE_URL``
  (scheme, host and path prefix), never from the request: a hostile ``Host`` header cannot
  turn a reset link into a link to another site, and a job or a CLI command (no request)
  builds the same links as a page.
* ``secret_url(endpoint, secret=…)`` builds a single-use link (activation, reset, e-mail
  change, delegation). It is a ``SecretUrl``: ``queue_email`` refuses one in the template
  context, it only goes in ``queue_email(links=…)``. ``public_url`` refuses a ``secret``.
* ``seal``/``unseal``: the queue stores the secret links encrypted (Fernet, key derived
  from ``SECRET_KEY``) in ``OutboundMessage.sealed_links``, a column no screen shows; the
  stored bodies carry « lien masqué » in their place. The sending job puts the real links
  back only in the e-mail handed to SMTP, then erases the sealed value. Changing
  ``SECRET_KEY`` makes the links of messages still queued unreadable: those messages fail
  (the user asks for a new link).
"""
from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from markupsafe import escape

REDACTED = "« lien masqué »"


class SecretUrl(str):
    """A URL carrying a single-use secret: never stored in clear, never shown to staff."""


class UnreadableLinks(Exception):
    """The sealed links of a message cannot be decrypted (key changed or value damaged)."""


def split_base_url(value: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path prefix) of a base URL; ``ValueError`` (French) if it
    is not an absolute http(s) URL."""
    parts = urlsplit((value or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        raise ValueError(f"PUBLIC_BASE_URL doit être une adresse absolue http:// ou https:// "
                         f"(reçu : {value!r})")
    return parts.scheme, parts.netloc, parts.path.rstrip("/") or "/"


def _build(endpoint: str, values: dict) -> str:
    app = current_app._get_current_object()
    scheme, host, script_name = split_base_url(app.config["PUBLIC_BASE_URL"])
    values = dict(values)
    app.inject_url_defaults(endpoint, values)
    adapter = app.url_map.bind(host, script_name=script_name, url_scheme=scheme)
    return adapter.build(endpoint, values, force_external=True)


def public_url(endpoint: str, **values) -> str:
    """The absolute public URL of ``endpoint`` (no request needed)."""
    if "secret" in values:
        raise ValueError("Un lien à usage unique se construit avec secret_url() et se "
                         "passe dans queue_email(links=…).")
    return _build(endpoint, values)


def secret_url(endpoint: str, *, secret: str, **values) -> SecretUrl:
    """The absolute public URL of a single-use link, for ``queue_email(links=…)`` only."""
    return SecretUrl(_build(endpoint, {**values, "secret": secret}))


# -- sealing ------------------------------------------------------------------------------
def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"]
    return Fernet(base64.urlsafe_b64encode(
        hashlib.sha256(f"outbound-links:{secret}".encode()).digest()))


def placeholders(names) -> dict[str, str]:
    """The text shown instead of each secret link: « lien masqué », then « lien masqué 2 »…"""
    return {name: REDACTED if i == 0 else f"« lien masqué {i + 1} »"
            for i, name in enumerate(names)}


def seal(links: dict[str, str], shown: dict[str, str]) -> str:
    """The encrypted value stored with the message: each placeholder and its real URL."""
    pairs = [[shown[name], str(url)] for name, url in links.items()]
    return _fernet().encrypt(json.dumps(pairs).encode()).decode()


def unseal(sealed: str | None, body_text: str | None,
           body_html: str | None) -> tuple[str | None, str | None]:
    """The bodies with the real links in place of their placeholders (for SMTP only)."""
    if not sealed:
        return body_text, body_html
    try:
        pairs = json.loads(_fernet().decrypt(sealed.encode()))
    except (InvalidToken, ValueError) as error:
        raise UnreadableLinks("Lien masqué illisible (clé changée ?) : le destinataire "
                              "doit refaire la démarche.") from error
    for shown, url in pairs:
        if body_text is not None:
            body_text = body_text.replace(shown, url)
        if body_html is not None:
            body_html = body_html.replace(shown, str(escape(url)))
    return body_text, body_html

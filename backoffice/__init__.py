"""Back office of the regional training-offer and candidature platform.

``create_app(config=None)`` builds the Flask application: configuration, extensions,
blueprints, the Flask-Admin screens and the CLI commands.

Start-up refuses a production configuration (``BACKOFFICE_ENV=production``) without its
own ``SECRET_KEY`` or ``PUBLIC_BASE_URL``. Requests whose ``Host`` is not in
``TRUSTED_HOSTS`` get a 400; ``X-Forwarded-*`` headers count only behind
``PROXY_FIX_HOPS`` configured proxies.
"""
from __future__ import annotations

import gc
import os
from pathlib import Path

from flask import Flask


def create_app(config: type | dict | None = None) -> Flask:
    from backoffice import models  # noqa: F401  (register every table on the metadata)
    from backoffice import (crypto, forms_engine, input_guard, rules_engine, search,
                            security_headers, workflow)
    from backoffice.admin import init_admin
    from backoffice.auth import init_auth
    from backoffice.config import INSTANCE_DIR, Config
    from backoffice.extensions import babel, csrf, db, migrate
    from backoffice.models.base import include_object, render_item
    from backoffice.views import init_views

    app = Flask(__name__, instance_path=str(INSTANCE_DIR))
    app.config.from_object(Config)
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    _check_production_settings(app)
    _configure_hosts_and_proxies(app)
    crypto.init_app(app)  # the NIR keys: mandatory in production
    security_headers.init_app(app)  # headers on every response, cookie flags

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////:memory:"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith("postgresql://"):
        # psycopg 3 is the driver; accept the usual postgresql:// URL.
        app.config["SQLALCHEMY_DATABASE_URI"] = uri.replace("postgresql://",
                                                            "postgresql+psycopg://", 1)

    db.init_app(app)
    search.init_app(app)  # SEARCH_DATABASE_URL: search may read a replica
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"),
                     render_as_batch=True, compare_type=True, render_item=render_item,
                     include_object=include_object)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=lambda: "fr", timezone_selector=lambda: "Europe/Paris")
    _configure_sqlite(app)

    input_guard.init_app(app)  # before any blueprint: request class, int converter, guard
    workflow.init_app(app)
    rules_engine.init_app(app)  # load and validate rules/ (a bad file fails start-up)
    init_auth(app)
    init_views(app)
    init_admin(app)
    forms_engine.init_app(app)  # load and check forms/*.yaml: a bad file stops start-up

    from backoffice.cli import register_commands
    register_commands(app)
    from backoffice.database_errors import RetryOnce
    app.wsgi_app = RetryOnce(app.wsgi_app)  # a GET that lost the database runs once more
    if app.config.get("GC_FREEZE_AT_START"):
        gc.collect()
        gc.freeze()  # see Config.GC_FREEZE_AT_START
    return app


def _is_production() -> bool:
    return os.environ.get("BACKOFFICE_ENV") == "production"


def _check_production_settings(app: Flask) -> None:
    from backoffice.config import DEFAULT_PUBLIC_BASE_URL
    from backoffice.links import split_base_url

    try:
        scheme, _, _ = split_base_url(app.config["PUBLIC_BASE_URL"])
    except ValueError as error:
        raise RuntimeError(str(error)) from None
    if not _is_production():
        return
    if app.config["SECRET_KEY"] == "dev-secret-key-change-me":
        raise RuntimeError("SECRET_KEY doit être défini en production")
    if app.config["PUBLIC_BASE_URL"] == DEFAULT_PUBLIC_BASE_URL:
        raise RuntimeError("PUBLIC_BASE_URL doit être défini en production (adresse publique "
                           "du back office, par exemple https://offre.exemple.fr)")
    if scheme != "https":
        raise RuntimeError("PUBLIC_BASE_URL doit commencer par https:// en production")


def _configure_hosts_and_proxies(app: Flask) -> None:
    """``TRUSTED_HOSTS`` defaults to the public host (and the loopback outside production);
    ``ProxyFix`` trusts exactly ``PROXY_FIX_HOPS`` proxies, none by default."""
    from urllib.parse import urlsplit

    from werkzeug.middleware.proxy_fix import ProxyFix

    if not app.config.get("TRUSTED_HOSTS"):
        hosts = [urlsplit(app.config["PUBLIC_BASE_URL"]).hostname]
        if not _is_production():
            hosts += ["localhost", "127.0.0.1"]
        app.config["TRUSTED_HOSTS"] = list(dict.fromkeys(hosts))
    hops = int(app.config.get("PROXY_FIX_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from flask import render_template, request
    from werkzeug.exceptions import SecurityError

    @app.before_request
    def _refuse_untrusted_host():
        # Flask found the host untrusted (no URL adapter): stop before any other hook.
        if isinstance(request.routing_exception, SecurityError):
            raise request.routing_exception

    @app.errorhandler(SecurityError)
    def _untrusted_host(error):
        # A page that builds no URL: there is no URL adapter for an untrusted host.
        return render_template("error_host.html"), 400


def _configure_sqlite(app: Flask) -> None:
    """WAL, a busy timeout and BEGIN IMMEDIATE at a transaction's first write, on SQLite
    (see ``backoffice/sqlite.py``)."""
    from backoffice import sqlite

    sqlite.init_app(app)

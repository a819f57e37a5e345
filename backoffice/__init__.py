"""Back office of the regional training-offer and candidature platform.

``create_app(config=None)`` builds the Flask application: configuration, extensions,
blueprints, the Flask-Admin screens and the CLI commands.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask


def create_app(config: type | dict | None = None) -> Flask:
    from backoffice import models  # noqa: F401  (register every table on the metadata)
    from backoffice import forms_engine, input_guard, rules_engine, workflow
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

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////:memory:"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if uri.startswith("postgresql://"):
        # psycopg 3 is the driver; accept the usual postgresql:// URL.
        app.config["SQLALCHEMY_DATABASE_URI"] = uri.replace("postgresql://",
                                                            "postgresql+psycopg://", 1)

    db.init_app(app)
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
    return app


def _check_production_settings(app: Flask) -> None:
    if os.environ.get("BACKOFFICE_ENV") == "production" and \
            app.config["SECRET_KEY"] == "dev-secret-key-change-me":
        raise RuntimeError("SECRET_KEY doit être défini en production")


def _configure_sqlite(app: Flask) -> None:
    """Foreign keys, WAL and a busy timeout on SQLite (the embedded default), and real
    transactions: pysqlite's own BEGIN handling breaks SAVEPOINTs (a released savepoint
    would commit), so the driver is put in autocommit mode and SQLAlchemy emits BEGIN."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from backoffice.extensions import db

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine: Engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN")

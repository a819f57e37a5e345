"""``backoffice db upgrade`` builds the schema the models describe (no drift), on the
database under test (a fresh SQLite file, or a scratch PostgreSQL database)."""
from __future__ import annotations

import contextlib
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from backoffice import create_app
from backoffice.config import TestingConfig
from backoffice.extensions import db
from backoffice.models.base import include_object, render_item


@contextlib.contextmanager
def scratch_database(database_url: str, tmp_path):
    """An empty database of the same kind as the one under test."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    name = f"migrations_{uuid.uuid4().hex[:10]}"
    server = create_engine(make_url(database_url).set(drivername="postgresql+psycopg"),
                           isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture
def migrated_app(database_url, tmp_path):
    with scratch_database(database_url, tmp_path) as url:
        app = create_app(type("Config", (TestingConfig,), {"SQLALCHEMY_DATABASE_URI": url}))
        with app.app_context():
            upgrade()
            yield app
            db.session.remove()
            db.engine.dispose()


def test_migrations_match_the_models(migrated_app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "compare_type": True, "render_item": render_item,
            "include_object": include_object})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_migrations_go_down_and_up_again(migrated_app):
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert "candidature" in inspect(db.engine).get_table_names()

"""Configuration read from environment variables (12-factor).

``Config`` is what ``make run`` and production use; ``TestingConfig`` is what the
test suite uses. Every setting can be overridden by the environment variable of the
same name.
"""
from __future__ import annotations

import os
from pathlib import Path

INSTANCE_DIR = Path(os.environ.get("BACKOFFICE_INSTANCE", Path.cwd() / "instance"))
# The definition files (rules/, workflows/, forms/) are data versioned with the code, at the
# top of the checkout; a deployment that installs the package elsewhere points here.
DEFINITIONS_DIR = Path(os.environ.get("BACKOFFICE_DEFINITIONS",
                                      Path(__file__).resolve().parent.parent))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "oui", "on"}


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-secret-key-change-me")
    # Key used to encrypt the NIR (Fernet, derived from this value). Defaults to SECRET_KEY.
    NIR_ENCRYPTION_KEY = os.environ.get("NIR_ENCRYPTION_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'backoffice.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", False)
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    BABEL_DEFAULT_LOCALE = "fr"
    BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
    DISPLAY_TIMEZONE = "Europe/Paris"
    FLASK_ADMIN_SWATCH = "default"
    # Outgoing e-mail (used by the scheduled sending job).
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = int(os.environ.get("SMTP_PORT", "587"))
    SMTP_USER = os.environ.get("SMTP_USER", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = _env_bool("SMTP_STARTTLS", True)
    SMTP_SSL = _env_bool("SMTP_SSL", False)
    MAIL_FROM = os.environ.get("MAIL_FROM", "ne-pas-repondre@backoffice.local")
    # Regional hub (Agora) endpoint for the outbound queue.
    HUB_ENDPOINT_URL = os.environ.get("HUB_ENDPOINT_URL", "")
    ADMIN_PAGE_SIZE = int(os.environ.get("ADMIN_PAGE_SIZE", "20"))
    RULES_DIR = DEFINITIONS_DIR / "rules"
    WORKFLOWS_DIR = DEFINITIONS_DIR / "workflows"
    FORMS_DIR = DEFINITIONS_DIR / "forms"
    # -- security: hostile input (backoffice/input_guard.py) --
    # Largest request body accepted, in bytes (413 « Envoi trop volumineux » beyond); the
    # catalogue import takes files up to 5 Mo. Form fields without a file stay limited by
    # Flask's MAX_FORM_MEMORY_SIZE (500 ko).
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(6 * 1024 * 1024)))


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SERVER_NAME = "localhost"

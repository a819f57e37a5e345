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


def _env_bool(name: str, default: bool | None) -> bool | None:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "oui", "on"}


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:5000"  # `make run`, for development only


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-secret-key-change-me")
    # Key used to encrypt the NIR (Fernet, derived from this value). Defaults to SECRET_KEY.
    NIR_ENCRYPTION_KEY = os.environ.get("NIR_ENCRYPTION_KEY")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'backoffice.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # A web worker's objects loaded at start (the application, rules, forms, mappers) live
    # as long as it: gc.freeze() keeps the collector's full passes from walking them again
    # and again (120 ms every ~20 requests of an admin list at scale 25; 27 ms frozen).
    GC_FREEZE_AT_START = _env_bool("GC_FREEZE_AT_START", True)
    # SQLite only: how long a transaction waits for the write lock held by another one (a
    # job's batch, a page's save) before « database is locked » (see backoffice/sqlite.py).
    SQLITE_BUSY_TIMEOUT_MS = int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000"))
    # Optional: the database search reads (a read replica of DATABASE_URL); unset: DATABASE_URL.
    SEARCH_DATABASE_URL = os.environ.get("SEARCH_DATABASE_URL") or None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # None: Secure in production only (security_headers.py).
    SESSION_COOKIE_SECURE = _env_bool("SESSION_COOKIE_SECURE", None)
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
    # -- security: public links, trusted hosts and proxies --
    # The address users reach the back office at (scheme, host, optional path prefix):
    # every link in an e-mail is built from it, never from the request's Host header.
    # Mandatory in production (BACKOFFICE_ENV=production), https:// there.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL)
    # Host names accepted in the Host header (comma-separated; ".exemple.fr" accepts its
    # subdomains); other hosts get a 400. Unset: the host of PUBLIC_BASE_URL, plus
    # localhost and 127.0.0.1 outside production.
    TRUSTED_HOSTS = _env_list("TRUSTED_HOSTS")
    # Number of reverse proxies in front of the application whose X-Forwarded-For,
    # -Proto and -Host headers are trusted (werkzeug ProxyFix). 0: those headers are ignored.
    PROXY_FIX_HOPS = int(os.environ.get("PROXY_FIX_HOPS", "0"))
    # -- privacy: NIR keys --
    # NIR_ENCRYPTION_KEYS: Fernet keys (``Fernet.generate_key()``), comma-separated, newest
    # first: the newest encrypts, all decrypt; after adding a key in front, run
    # ``backoffice nir rotate`` then drop the old ones. Mandatory when
    # BACKOFFICE_ENV=production; NIR_ENCRYPTION_KEY (above, one key) is still accepted.
    # Without either, outside production only, a development key derived from SECRET_KEY.
    NIR_ENCRYPTION_KEYS = os.environ.get("NIR_ENCRYPTION_KEYS", "")
    # -- security: authentication (login throttling, e-mails of the public forms) --
    # Login attempts counted per account (the e-mail typed) and per client address
    # (request.remote_addr: behind a proxy, configure the trusted hops) in a fixed window;
    # beyond, the attempt is refused without checking the password until the window ends.
    # A successful login resets the account's counter.
    LOGIN_ATTEMPTS_PER_ACCOUNT = int(os.environ.get("LOGIN_ATTEMPTS_PER_ACCOUNT", "5"))
    LOGIN_ATTEMPTS_PER_ADDRESS = int(os.environ.get("LOGIN_ATTEMPTS_PER_ADDRESS", "50"))
    LOGIN_WINDOW_MINUTES = int(os.environ.get("LOGIN_WINDOW_MINUTES", "15"))
    # E-mails sent from the public forms (registration, forgotten password) per recipient
    # and per client address in a window; beyond, the page answers the same and nothing
    # is queued.
    PUBLIC_EMAILS_PER_RECIPIENT = int(os.environ.get("PUBLIC_EMAILS_PER_RECIPIENT", "3"))
    PUBLIC_EMAILS_PER_ADDRESS = int(os.environ.get("PUBLIC_EMAILS_PER_ADDRESS", "20"))
    PUBLIC_EMAILS_WINDOW_MINUTES = int(os.environ.get("PUBLIC_EMAILS_WINDOW_MINUTES", "60"))
    # -- security: rule files run in limited child processes (issue 11, defect 6) --
    # An edited rule file (Modifier → Essayer / Activer, and Revenir) is only ever parsed,
    # registered and evaluated in a child process (backoffice.rules_tryout) under these
    # limits: wall-clock seconds (the child is killed), CPU seconds (RLIMIT_CPU) and
    # address space in MiB (RLIMIT_AS). A try-out over every object must fit in them.
    RULES_CHILD_WALL_SECONDS = float(os.environ.get("RULES_CHILD_WALL_SECONDS", "600"))
    RULES_CHILD_CPU_SECONDS = int(os.environ.get("RULES_CHILD_CPU_SECONDS", "300"))
    RULES_CHILD_MEMORY_MB = int(os.environ.get("RULES_CHILD_MEMORY_MB", "1024"))
    # Try-outs and activations running at once, counted in the database across every web
    # worker and server; beyond it the request is refused with a French message.
    RULES_MAX_CONCURRENT_TRYOUTS = int(os.environ.get("RULES_MAX_CONCURRENT_TRYOUTS", "2"))

    # -- the task queue (backoffice/tasks.py) --
    # A runner writes the heartbeat of the task or scheduled job it runs every
    # TASK_HEARTBEAT_SECONDS; a run « En cours » without one for TASK_INTERRUPTED_AFTER_SECONDS
    # is « Interrompue » (its runner was killed) and its work is taken over. After each
    # committed batch of a long task (jobs, CSV import), the runner pauses
    # TASK_BATCH_PAUSE_SECONDS to leave the database to the pages (0: no pause).
    TASK_HEARTBEAT_SECONDS = float(os.environ.get("TASK_HEARTBEAT_SECONDS", "10"))
    TASK_INTERRUPTED_AFTER_SECONDS = float(os.environ.get("TASK_INTERRUPTED_AFTER_SECONDS", "60"))
    TASK_BATCH_PAUSE_SECONDS = float(os.environ.get("TASK_BATCH_PAUSE_SECONDS", "0"))

    # -- security: sessions --
    # Every login is a server-side session (table user_session) that ends at logout, on a
    # password change, on « Fermer mes autres sessions » and on deactivation; it also ends
    # after this many minutes without a request (staff accounts, then the others) and,
    # whatever the activity, this many hours after the login.
    SESSION_IDLE_MINUTES_STAFF = int(os.environ.get("SESSION_IDLE_MINUTES_STAFF", "30"))
    SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "120"))
    # The signed session cookie itself is refused beyond SESSION_MAX_HOURS too
    # (PERMANENT_SESSION_LIFETIME is set from it in auth.init_auth).
    SESSION_MAX_HOURS = int(os.environ.get("SESSION_MAX_HOURS", "12"))

    # -- security: MFA --
    # Staff accounts (admin, moderateur, responsable_regles) log in with a TOTP code too.
    # The TOTP secrets are encrypted with a key derived from MFA_ENCRYPTION_KEY (defaults to
    # SECRET_KEY: changing it makes every staff member enrol again). MFA_ISSUER is the name
    # shown in the authenticator app; MFA_MAX_ATTEMPTS wrong codes end the login attempt,
    # and after MFA_MAX_FAILURES_PER_HOUR wrong codes on an account (all its logins of the
    # last hour together) no code is checked for it until the hour has passed.
    MFA_ENCRYPTION_KEY = os.environ.get("MFA_ENCRYPTION_KEY")
    MFA_ISSUER = os.environ.get("MFA_ISSUER", "Back office formation")
    MFA_MAX_ATTEMPTS = int(os.environ.get("MFA_MAX_ATTEMPTS", "5"))
    MFA_MAX_FAILURES_PER_HOUR = int(os.environ.get("MFA_MAX_FAILURES_PER_HOUR", "20"))
    # -- security: headers and cookies (backoffice/security_headers.py) --
    # Session cookie name: unset means "__Host-session" when the cookie is Secure (the
    # production default), "session" otherwise (development over http).
    SESSION_COOKIE_NAME = os.environ.get("SESSION_COOKIE_NAME") or None
    # Remember-me cookie: unset means the same as SESSION_COOKIE_SECURE.
    REMEMBER_COOKIE_SECURE = _env_bool("REMEMBER_COOKIE_SECURE", None)
    # Strict-Transport-Security max-age in seconds, sent on HTTPS responses only; 0: none.
    HSTS_MAX_AGE = int(os.environ.get("HSTS_MAX_AGE", str(365 * 24 * 3600)))
    # -- security: hostile input (backoffice/input_guard.py) --
    # Largest request body accepted, in bytes (413 « Envoi trop volumineux » beyond); the
    # catalogue import takes files up to 5 Mo. Form fields without a file stay limited by
    # Flask's MAX_FORM_MEMORY_SIZE (500 ko).
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(6 * 1024 * 1024)))


class TestingConfig(Config):
    TESTING = True
    GC_FREEZE_AT_START = False  # hundreds of applications in one process: let them go
    SECRET_KEY = "test-secret-key"
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SERVER_NAME = "localhost"
    # -- security: public links, trusted hosts and proxies --
    PUBLIC_BASE_URL = "http://localhost"
    TRUSTED_HOSTS = None  # derived from PUBLIC_BASE_URL: localhost, 127.0.0.1
    PROXY_FIX_HOPS = 0

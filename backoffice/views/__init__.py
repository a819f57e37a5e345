"""Blueprints for OF staff and prescribers (one module per area)."""
from __future__ import annotations

from flask import Flask, flash

from backoffice.extensions import db
from backoffice.input_guard import BaseForm
from backoffice.services import DomainError
from backoffice.workflow import WorkflowError


class CsrfForm(BaseForm):
    """No field: only the CSRF token of a page's action buttons."""


def run_action(action, *args, success: str, refused: str = "", **kwargs) -> bool:
    """One user action, one transaction: call ``action(*args, **kwargs)``, commit and
    flash ``success``; a refusal (a service's ``DomainError`` or the workflow's) is rolled
    back and its French message flashed, after the ``refused`` prefix."""
    try:
        action(*args, **kwargs)
        db.session.commit()
    except (DomainError, WorkflowError) as error:
        db.session.rollback()
        flash(refused + error.message, "error")
        return False
    flash(success, "success")
    return True


def init_views(app: Flask) -> None:
    from backoffice import clock
    from backoffice.views import accounts, main

    app.register_blueprint(main.bp)
    from backoffice.views import avis, prescribers
    app.register_blueprint(prescribers.bp)
    app.register_blueprint(avis.bp)
    app.register_blueprint(accounts.bp)
    from backoffice.views import catalogue
    app.register_blueprint(catalogue.bp)
    app.jinja_env.filters["local_datetime"] = clock.format_local
    app.jinja_env.filters["local_date"] = lambda d: "" if d is None else d.strftime("%d/%m/%Y")
    main.register_error_pages(app)

"""Blueprints for OF staff and prescribers (one module per area)."""
from __future__ import annotations

from flask import Flask


def init_views(app: Flask) -> None:
    from backoffice import clock
    from backoffice.views import main

    app.register_blueprint(main.bp)
    app.jinja_env.filters["local_datetime"] = clock.format_local
    app.jinja_env.filters["local_date"] = lambda d: "" if d is None else d.strftime("%d/%m/%Y")
    main.register_error_pages(app)

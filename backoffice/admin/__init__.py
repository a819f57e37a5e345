"""Flask-Admin screens under /admin, for staff roles only (see ``base.SecureModelView``)."""
from __future__ import annotations

from flask import Flask


def init_admin(app: Flask) -> None:
    from flask_admin import Admin
    from flask_admin.theme import Bootstrap4Theme

    from backoffice.admin import base

    admin = Admin(app, name="Back office — Administration", url="/admin",
                  index_view=base.SecureIndexView(name="Accueil", url="/admin"),
                  theme=Bootstrap4Theme(base_template="admin/backoffice_base.html",
                                        fluid=True))
    base.register_views(admin)

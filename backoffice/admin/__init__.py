"""Flask-Admin screens under /admin, for staff roles only (see ``base.SecureModelView``)."""
from __future__ import annotations

from pathlib import Path

from flask import Flask


def init_admin(app: Flask) -> None:
    from flask_admin import Admin
    from flask_admin.theme import Bootstrap4Theme

    from backoffice.admin import base
    from backoffice.security_headers import csp_nonce

    # Flask-Admin 2.2 ships a stale compiled French catalogue: ours is compiled from its
    # own admin.po (see backoffice/translations/README.md).
    translations = str(Path(__file__).parent.parent / "translations")
    admin = Admin(app, name="Back office — Administration", url="/admin",
                  translations_path=translations, csp_nonce_generator=csp_nonce,
                  index_view=base.SecureIndexView(name="Accueil", url="/admin"),
                  theme=Bootstrap4Theme(base_template="admin/backoffice_base.html",
                                        fluid=True))
    base.register_views(admin)

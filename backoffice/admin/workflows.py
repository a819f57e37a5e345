"""Admin screen « Workflows »: every workflow drawn as a diagram, with who may fire each
transition, the rule sets guarding it and its side effects."""
from __future__ import annotations

from flask_admin import BaseView, expose
from markupsafe import Markup

from backoffice import workflow
from backoffice.admin.base import STAFF, SecureIndexView
from backoffice.models import StaffRole
from backoffice.workflow_diagram import render_svg


class WorkflowsView(BaseView):
    roles = (*STAFF, StaffRole.RESPONSABLE_REGLES)
    is_accessible = SecureIndexView.is_accessible
    inaccessible_callback = SecureIndexView.inaccessible_callback

    @expose("/")
    def index(self):
        workflows = sorted(workflow.workflows().values(), key=lambda w: w.label)
        diagrams = {w.object_type: Markup(render_svg(w)) for w in workflows}
        return self.render("admin/workflows.html", workflows=workflows, diagrams=diagrams)


def register(admin) -> None:
    admin.add_view(WorkflowsView(name="Workflows", endpoint="workflows", category="Suivi"))

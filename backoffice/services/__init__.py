"""Domain operations, one module per capability (catalogue, candidatures, accounts).

Services take keyword arguments (``actor=``, ``at=``), change states only through
``backoffice.workflow.fire``, check rules through ``backoffice.rules_engine``, and raise a
domain error carrying a French message; the caller (a view, an admin action, a job) owns
the transaction.

Services take plain data: a dict of field values (strings as typed, or Python values)
for the forms of ``forms/*.yaml``, validated by ``forms_engine.clean`` (the rules the
page's form applies), never a request, a WTForms form or ``url_for``; a view, the CSV
import, a queued task or the CLI call them alike. Bad values raise the service's
``DomainError`` with the French message of each field in ``fields``.
"""


class DomainError(Exception):
    """A refused operation: ``message`` is French and meant for the user, ``field`` the
    form field it concerns (if any), ``fields`` the messages by field name when several
    values are refused. Each service raises its own subclass."""

    def __init__(self, message: str, field: str | None = None,
                 fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.fields = fields if fields is not None else ({field: [message]} if field else {})

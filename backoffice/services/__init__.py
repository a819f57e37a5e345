"""Domain operations, one module per capability (catalogue, candidatures, accounts).

Services take keyword arguments (``actor=``, ``at=``), change states only through
``backoffice.workflow.fire``, check rules through ``backoffice.rules_engine``, and raise a
domain error carrying a French message; the caller (a view, an admin action, a job) owns
the transaction.
"""


class DomainError(Exception):
    """A refused operation: ``message`` is French and meant for the user, ``field`` the
    form field it concerns (if any). Each service raises its own subclass."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

"""Domain operations, one module per capability (catalogue, candidatures, accounts).

Services take keyword arguments (``actor=``, ``at=``), change states only through
``backoffice.workflow.fire``, check rules through ``backoffice.rules_engine``, and raise a
domain error carrying a French message; the caller (a view, an admin action, a job) owns
the transaction.
"""

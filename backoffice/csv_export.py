"""The one way the back office writes a CSV file for download: every export goes through
``csv_response`` (or ``writer`` for a file written elsewhere).

CSV injection (OWASP « CSV Injection »): a spreadsheet opening the file runs a cell that
starts with ``=``, ``+``, ``-`` or ``@`` as a formula (and a leading tab or carriage
return hides such a start). Any text a user typed — a name, a function — could then call
out to the network or run a command on the reader's machine. Every cell starting with
one of those characters is written with a leading apostrophe, which spreadsheets show
as text; the rest of the value is unchanged.

Files are UTF-8 with a BOM and ``;`` as separator, as French spreadsheets expect.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from flask import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """``value`` as a cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class SafeWriter:
    """``csv.writer`` whose every cell goes through ``neutralise``."""

    def __init__(self, out, delimiter: str = ";"):
        self._writer = csv.writer(out, delimiter=delimiter)

    def writerow(self, row: Iterable) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, delimiter: str = ";") -> SafeWriter:
    return SafeWriter(out, delimiter=delimiter)


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable]) -> Response:
    """A CSV download (attachment ``filename``) of ``header`` then ``rows``."""
    out = io.StringIO()
    safe = writer(out)
    safe.writerow(header)
    safe.writerows(rows)
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})

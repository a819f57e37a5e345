"""CSV exports never hand a spreadsheet a formula: a cell starting with = + - @ (or a tab,
a carriage return) is written with a leading apostrophe, in every export."""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from backoffice.csv_export import neutralise
from tests import factories
from tests.conftest import login


@pytest.mark.parametrize("value,written", [
    ("=HYPERLINK(\"http://attaquant.example\")", "'=HYPERLINK(\"http://attaquant.example\")"),
    ("+33 5 56 00 00 00", "'+33 5 56 00 00 00"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("Dupont", "Dupont"),
    ("Jean-Marie", "Jean-Marie"),
    ("", ""),
    (None, ""),
])
def test_a_cell_that_a_spreadsheet_would_run_is_neutralised(value, written):
    assert neutralise(value) == written


def test_the_referent_export_neutralises_a_member_name(client, db):
    """A member who named themselves « =cmd|… » appears as text in the référent's file."""
    structure = factories.create_structure()
    referent = factories.create_member(structure, is_referent=True)
    factories.create_member(structure)
    member = factories.create_user(nom="=cmd|' /C calc'!A0", prenom="@SUM(1+1)",
                                   fonction="-2+3")
    db.session.add(factories.Membership(user=member, structure=structure))
    db.session.commit()
    login(client, referent)
    export = client.get("/referent/utilisateurs.csv")
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff")), delimiter=";"))
    row = next(r for r in rows if r[2] == member.email)
    assert row[:2] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)"] and row[3] == "'-2+3"
    for r in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in r)


def test_every_csv_export_goes_through_the_one_helper():
    """No module writes CSV with ``csv.writer`` except ``backoffice/csv_export.py``."""
    root = Path(__file__).resolve().parent.parent / "backoffice"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "csv_export.py"
                 and re.search(r"csv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert offenders == []

"""Every read of a candidate's personal data by staff is written to the RGPD access log,
which admins — and only admins — read in the admin screen « Consultations de données
personnelles »."""
from __future__ import annotations

from flask import g
from sqlalchemy import select

from backoffice.extensions import db
from backoffice.models import PersonalDataAccess, StaffRole
from tests import factories as f
from tests.conftest import login


def fresh_client(app):
    for key in ("_login_user", "membership", "csrf_token"):
        g.pop(key, None)
    return app.test_client()


def log_rows():
    return list(db.session.scalars(select(PersonalDataAccess).order_by(PersonalDataAccess.id)))


def test_a_moderator_opening_a_candidate_detail_page_is_logged(client, db):
    moderator = f.create_staff(StaffRole.MODERATEUR)
    candidate = f.create_candidate(nom="Durand", email="durand@exemple.fr")
    db.session.commit()
    login(client, moderator)
    page = client.get(f"/admin/candidate/details/?id={candidate.id}")
    assert page.status_code == 200 and "durand@exemple.fr" in page.text
    [row] = log_rows()
    assert (row.actor_id, row.actor_role, row.candidate_id) == (
        moderator.id, StaffRole.MODERATEUR, candidate.id)
    assert "candidats" in row.what and f"id={candidate.id}" in row.location


def test_candidature_screens_and_lists_are_logged_too(client, db):
    moderator = f.create_staff(StaffRole.MODERATEUR)
    candidature = f.create_candidature()
    db.session.commit()
    login(client, moderator)
    assert client.get(f"/admin/candidature/details/?id={candidature.id}").status_code == 200
    assert client.get(f"/admin/candidature/edit/?id={candidature.id}").status_code == 200
    assert client.get("/admin/candidate/?search=Candidat").status_code == 200
    rows = log_rows()
    assert [r.candidate_id for r in rows] == [candidature.candidate_id,
                                              candidature.candidate_id, None]
    assert "search=Candidat" in rows[2].location
    # An id that names nothing shows nothing and logs nothing.
    client.get("/admin/candidate/details/?id=999999")
    assert len(log_rows()) == 3


def test_only_admins_see_the_access_log(app, client, db):
    moderator = f.create_staff(StaffRole.MODERATEUR)
    admin = f.create_staff(StaffRole.ADMIN)
    candidate = f.create_candidate()
    db.session.commit()
    login(client, moderator)
    client.get(f"/admin/candidate/details/?id={candidate.id}")
    assert client.get("/admin/personaldataaccess/").status_code == 403
    [row] = log_rows()
    assert client.get(f"/admin/personaldataaccess/details/?id={row.id}").status_code == 403

    client = fresh_client(app)
    login(client, admin)
    screen = client.get("/admin/personaldataaccess/")
    assert screen.status_code == 200
    assert moderator.email in screen.text or moderator.nom in screen.text
    # Read-only: no edit, no delete.
    assert client.get(f"/admin/personaldataaccess/edit/?id={row.id}").status_code in (302,
                                                                                       403, 404)
    assert db.session.get(PersonalDataAccess, row.id) is not None


def test_a_staff_member_reading_a_file_on_the_front_pages_is_logged(client, db):
    """A moderator who is also a prescriber of the structure that registered the person."""
    structure = f.create_structure(kind="prescripteur", prescriber_type="mission_locale")
    staff = f.create_staff(StaffRole.MODERATEUR)
    db.session.add(f.Membership(user=staff, structure=structure,
                                profile_prescripteur="prescripteur_n2"))
    plain = f.create_prescriber("prescripteur_n2", structure)
    candidate = f.create_candidate(created_by_structure_id=structure.id)
    db.session.commit()
    login(client, staff)
    assert client.get(f"/prescription/candidats/{candidate.id}/modifier").status_code == 200
    [row] = log_rows()
    assert row.candidate_id == candidate.id and row.what == "Fiche du candidat"
    client = fresh_client(client.application)
    login(client, plain)  # a prescriber's reads are not staff reads
    assert client.get(f"/prescription/candidats/{candidate.id}/modifier").status_code == 200
    assert len(log_rows()) == 1

"""CSV import of the catalogue: good lines import, a bad line changes nothing."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import func, select

from backoffice import clock
from backoffice.extensions import db as _db
from backoffice.models import Formation, FormationState, OfProfile, Session
from tests.conftest import csrf_token, login
from tests.factories import (create_certification, create_commune, create_formation,
                             create_member, create_session, create_structure)

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.timezone.utc)
HEADER = ("reference_formation;intitule;objectif;code_certifinfo;dispositif;"
          "modalite_formation_continue;modalite_contrat_pro;modalite_apprentissage;"
          "annees_cursus;date_debut;date_fin;adresse;code_postal;commune;places")


@pytest.fixture(autouse=True)
def frozen_clock():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def structure(db):
    return create_structure()


@pytest.fixture
def logged(client, db, structure):
    user = create_member(structure, profile_of=OfProfile.GENERAL)
    create_certification(code_certifinfo="54321", intitule="CAP Boulanger")
    create_commune(nom="Périgueux", code_postal="24000")
    db.session.commit()
    login(client, user)
    return client


def _upload(client, content: bytes, **extra):
    page = client.get("/catalogue/import")
    data = {"csrf_token": csrf_token(page.text),
            "fichier": (io.BytesIO(content), "catalogue.csv"), **extra}
    return client.post("/catalogue/import", data=data, content_type="multipart/form-data")


def _count(model) -> int:
    _db.session.expire_all()
    return _db.session.scalar(select(func.count()).select_from(model))


def test_import_page_documents_the_columns(logged):
    page = logged.get("/catalogue/import").text
    for column in ("reference_formation", "code_certifinfo", "date_debut", "code_postal"):
        assert f"<code>{column}</code>" in page
    assert "Windows-1252" in page


@pytest.mark.parametrize("encoding,delimiter", [("utf-8", ";"), ("cp1252", ",")])
def test_good_and_bad_lines(logged, encoding, delimiter):
    lines = [
        HEADER,
        ";Pâtissier de Périgueux;Apprendre;54321;conventionne_region;oui;non;non;;"
        "01/09/2026;30/06/2027;2 rue Taillefer;24000;Périgueux;12",
        ";Pâtissier de Périgueux;Apprendre;54321;conventionne_region;oui;non;non;;"
        "01/09/2027;30/06/2028;2 rue Taillefer;24000;Périgueux;12",
        ";Sans modalités;;54321;;oui;;;;;;;;;",
        ";Mauvaise date;;54321;;oui;non;non;;31/02/2026;30/06/2027;;;;",
        ";Certification inconnue;;99999;;oui;non;non;;;;;;;",
    ]
    text = "\n".join(line.replace(";", delimiter) for line in lines) + "\n"
    response = _upload(logged, text.encode(encoding))
    assert response.status_code == 200
    page = response.text
    assert ("UTF-8" if encoding == "utf-8" else "Windows-1252") in page
    assert "2 importées, 3 en erreur" in page
    assert "créée" in page and "mise à jour" in page
    assert "Répondez par Oui ou par Non." in page
    assert "Indiquez une date valide au format jj/mm/aaaa." in page
    assert "Code Certif Info inconnu : 99999." in page
    # lines 2 and 3: one formation with two sessions; the bad lines left nothing behind
    _db.session.expire_all()
    formations = _db.session.scalars(select(Formation)).all()
    assert [f.intitule for f in formations] == ["Pâtissier de Périgueux"]
    assert formations[0].state == FormationState.BROUILLON
    assert _count(Session) == 2


def test_all_or_nothing_imports_nothing_when_a_line_fails(logged):
    text = "\n".join([HEADER, ";Bonne ligne;;54321;;oui;non;non;;;;;;;",
                      ";Mauvaise ligne;;54321;;peut-être;non;non;;;;;;;"])
    response = _upload(logged, text.encode("utf-8"), tout_ou_rien="1")
    assert "aucune ligne n&#39;a été importée" in response.text or \
        "aucune ligne n'a été importée" in response.text
    assert _count(Formation) == 0


def test_update_an_existing_formation_and_session(logged, db, structure):
    formation = create_formation(structure=structure, reference="202600000777",
                                 intitule="Ancien intitulé")
    session = create_session(formation=formation, reference="00001234",
                             date_debut=dt.date(2026, 9, 1), date_fin=dt.date(2027, 6, 30),
                             places=5)
    db.session.commit()
    text = ("reference_formation;intitule;reference_session;places\n"
            "202600000777;Nouvel intitulé;00001234;20\n")
    page = _upload(logged, text.encode("utf-8")).text
    assert "Formation 202600000777 mise à jour, session 00001234 mise à jour." in page
    _db.session.expire_all()
    assert _db.session.get(Formation, formation.id).intitule == "Nouvel intitulé"
    assert _db.session.get(Session, session.id).places == 20


def test_another_of_formation_cannot_be_updated(logged, db):
    other = create_formation(reference="202600000888", intitule="Pas à moi")
    db.session.commit()
    page = _upload(logged, b"reference_formation;intitule\n202600000888;Pris\n").text
    assert "n&#39;existe pas dans votre catalogue" in page
    _db.session.expire_all()
    assert _db.session.get(Formation, other.id).intitule == "Pas à moi"


def test_unknown_column_and_missing_file_are_explained(logged):
    page = logged.get("/catalogue/import")
    response = logged.post("/catalogue/import", data={"csrf_token": csrf_token(page.text)},
                           content_type="multipart/form-data")
    assert "Choisissez un fichier CSV à importer." in response.text
    response = _upload(logged, b"intitule;couleur\nx;rouge\n")
    assert "Colonne(s) inconnue(s) : couleur." in response.text

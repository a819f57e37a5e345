"""Publication rules on real formations: for every rule, a complete formation passes it
and a formation with one defect fails it, with the French message the OF sees on the
field; « Confirmer la publication » is refused while a blocking rule fails."""
from __future__ import annotations

import datetime as dt

import pytest

from backoffice import clock, rules_engine, workflow
from backoffice.extensions import db as _db
from tests.factories import (create_certification, create_commune, create_formation,
                             create_member, create_session, create_structure)

MENTION_APPRENTISSAGE = " (Contrat d'apprentissage possible)"


@pytest.fixture
def formation(db):
    """A formation that passes every publication rule."""
    structure = create_structure(raison_sociale="Afpa Limoges")
    formation = create_formation(
        structure=structure, organisme_formateur=structure, intitule="Cuisinier",
        certification=create_certification(code_certifinfo="54321",
                                           ouverte_apprentissage=True),
        objectif="Former des cuisiniers", programme="Techniques culinaires",
        lien_web="https://www.exemple.fr/cuisinier", modalite_formation_continue=True,
        modalite_contrat_pro=False, modalite_apprentissage=False, annees_cursus=[])
    create_session(formation=formation, reference="00254068", adresse="12 rue des Écoles",
                   commune=create_commune(nom="Limoges", code_postal="87000",
                                          code_insee="87085", departement="87"))
    _db.session.refresh(formation)
    return formation


def apprenticeship(f, years=(1, 2)):
    f.modalite_apprentissage = True
    f.annees_cursus = list(years)
    f.intitule = "Cuisinier" + MENTION_APPRENTISSAGE


def session(f):
    return f.sessions[0]


DEFECTS = {
    "intitule_obligatoire": (lambda f: setattr(f, "intitule", "  "),
                             "L'intitulé est obligatoire."),
    "intitule_trop_long": (lambda f: setattr(f, "intitule", "x" * 312),
                           "L'intitulé compte 312 caractères, 300 au plus."),
    "objectif_obligatoire": (lambda f: setattr(f, "objectif", None),
                             "L'objectif de la formation est obligatoire."),
    "programme_obligatoire": (lambda f: setattr(f, "programme", ""),
                              "Le programme (contenu) de la formation est obligatoire."),
    "organisme_formateur_obligatoire": (lambda f: setattr(f, "organisme_formateur", None),
                                        "Indiquez l'organisme formateur (celui qui donne les "
                                        "cours)."),
    "certification_unique": (lambda f: setattr(f, "certification", None),
                             "Une formation prépare exactement 1 certification (un code "
                             "Certif Info) : 0 indiquée(s)."),
    "certification_non_ouverte_apprentissage": (
        lambda f: (apprenticeship(f), setattr(f.certification, "ouverte_apprentissage", False)),
        "La certification 54321 n'est pas ouverte à l'apprentissage, alors que la formation "
        "est accessible en contrat d'apprentissage."),
    "modalite_formation_continue_obligatoire": (
        lambda f: setattr(f, "modalite_formation_continue", None),
        "Indiquez si la formation est accessible en formation continue (hors alternance) : "
        "oui ou non."),
    "modalite_contrat_pro_obligatoire": (
        lambda f: setattr(f, "modalite_contrat_pro", None),
        "Indiquez si la formation est accessible en contrat de professionnalisation : oui ou "
        "non."),
    "modalite_apprentissage_obligatoire": (
        lambda f: setattr(f, "modalite_apprentissage", None),
        "Indiquez si la formation est accessible en contrat d'apprentissage : oui ou non."),
    "aucune_modalite": (lambda f: setattr(f, "modalite_formation_continue", False),
                        "Au moins une modalité d'accès doit être à « oui » (formation "
                        "continue, contrat de professionnalisation ou contrat "
                        "d'apprentissage)."),
    "annees_cursus_manquantes": (lambda f: apprenticeship(f, years=()),
                                 "La formation est accessible en apprentissage : cochez au "
                                 "moins une année de cursus ouverte à l'apprentissage."),
    "annees_cursus_sans_apprentissage": (lambda f: setattr(f, "annees_cursus", [1, 3]),
                                         "Des années de cursus (1, 3) sont cochées alors que "
                                         "la formation n'est pas accessible en apprentissage."),
    "annee_cursus_hors_limites": (lambda f: apprenticeship(f, years=(0, 2, 6)),
                                  "Les années de cursus vont de 1 à 5 : 0, 2, 6 indiquées."),
    "lien_web_invalide": (lambda f: setattr(f, "lien_web", "www.exemple.fr"),
                          "Le lien web « www.exemple.fr » doit être une adresse http:// ou "
                          "https:// complète."),
    "aucune_session": (lambda f: setattr(session(f), "state", "annulee"),
                       "Ajoutez au moins une session (dates et lieu de formation)."),
    "session_fin_avant_debut": (
        lambda f: setattr(session(f), "date_fin", session(f).date_debut - dt.timedelta(days=1)),
        "La session 00254068 se termine le {fin}, avant de commencer le {debut}."),
    "session_commence_dans_le_passe": (
        lambda f: setattr(session(f), "date_debut", clock.today() - dt.timedelta(days=3)),
        "La session 00254068 commence le {debut}, une date passée : créez une nouvelle "
        "session."),
    "session_adresse_manquante": (lambda f: setattr(session(f), "adresse", None),
                                  "Indiquez l'adresse du lieu de formation de la session "
                                  "00254068."),
    "session_commune_manquante": (lambda f: setattr(session(f), "commune", None),
                                  "Indiquez la commune du lieu de formation de la session "
                                  "00254068."),
    "organisme_formateur_autre_siren": (
        lambda f: setattr(f, "organisme_formateur", create_structure(
            raison_sociale="Greta Sud", siret="77566591200018")),
        "L'organisme formateur Greta Sud (SIREN 775665912) n'a pas le SIREN de votre "
        "structure ({siren}) : contactez Cap Métiers (apprentissage@cap-metiers.pro) pour "
        "déclarer un organisme d'un autre SIREN."),
    "mention_apprentissage_attendue": (
        lambda f: (apprenticeship(f), setattr(f, "intitule", "Cuisinier")),
        "L'intitulé devrait se terminer par « (Contrat d'apprentissage possible) »."),
    "mention_professionnalisation_attendue": (
        lambda f: setattr(f, "modalite_contrat_pro", True),
        "L'intitulé devrait se terminer par « (Contrat de professionnalisation possible) »."),
    "mention_pro_ou_apprentissage_attendue": (
        lambda f: (apprenticeship(f), setattr(f, "modalite_contrat_pro", True)),
        "L'intitulé devrait se terminer par « (Contrat de professionnalisation ou "
        "Apprentissage possible) »."),
    "mention_sans_alternance": (
        lambda f: setattr(f, "intitule", "Cuisinier (Contrat de professionnalisation possible)"),
        "L'intitulé porte une mention de contrat en alternance alors que la formation n'est "
        "accessible ni en apprentissage ni en contrat de professionnalisation."),
}


def violations(formation):
    with _db.session.no_autoflush:  # a defect may break a database constraint
        return rules_engine.check("publication", formation)


def test_the_complete_formation_passes_every_rule(formation):
    assert violations(formation) == []


def test_every_rule_has_its_test():
    assert set(DEFECTS) == set(rules_engine.current("publication").rules)


@pytest.mark.parametrize("rule_id", sorted(DEFECTS))
def test_rule(formation, rule_id):
    """The OF sees the rule's French message, on the rule's field, only when the
    formation has the defect."""
    assert rule_id not in [v.rule_id for v in violations(formation)]
    defect, message = DEFECTS[rule_id]
    with _db.session.no_autoflush:
        defect(formation)
    found = [v for v in violations(formation) if v.rule_id == rule_id]
    assert len(found) == 1
    first = formation.sessions[0] if formation.sessions else None
    expected = message.format(
        fin=first.date_fin.strftime("%d/%m/%Y") if first else "",
        debut=first.date_debut.strftime("%d/%m/%Y") if first else "",
        siren=formation.structure.siren)
    assert found[0].message == expected
    assert found[0].field == rules_engine.current("publication").rules[rule_id].field


def test_every_failure_is_listed_not_only_the_first(formation):
    with _db.session.no_autoflush:
        formation.objectif = None
        formation.lien_web = "ftp://exemple.fr"
        formation.sessions[0].adresse = None
    assert [v.rule_id for v in violations(formation)] == [
        "objectif_obligatoire", "lien_web_invalide", "session_adresse_manquante"]
    assert [v.fact_index for v in violations(formation)] == [0, 0, 1]


def test_confirming_the_publication_is_refused_while_a_blocking_rule_fails(db, formation):
    manager = create_member(formation.structure, profile_of="gestionnaire_of_general")
    formation.intitule = "Cuisinier (Contrat de professionnalisation possible)"
    formation.objectif = None
    with pytest.raises(workflow.GuardFailed) as error:
        workflow.fire(formation, "publier", actor=manager)
    assert error.value.message == ("« Confirmer la publication » est refusé : L'objectif de "
                                   "la formation est obligatoire.")
    assert [v.rule_id for v in error.value.violations] == ["objectif_obligatoire",
                                                           "mention_sans_alternance"]
    formation.objectif = "Former des cuisiniers"
    workflow.fire(formation, "publier", actor=manager)  # a warning does not block
    assert formation.state == "en_attente_moderation"

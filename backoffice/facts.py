"""Facts for the rule sets: plain dictionaries built from model objects.

durable-rules sees only JSON documents: it has no length operator, no dates and no
queries. So this module computes what the rules need — lengths, counts, days since
1970-01-01 (``jour_*``, whole numbers that compare correctly), Paris local time,
duplicates found in SQL — and the rules in ``rules/*.yaml`` decide.

Conventions, relied on by ``rules_engine``:

* every fact has a ``type``; the fields of each type are declared in ``SCHEMAS`` (with a
  French description shown on the rules screen), and a rule naming an undeclared field
  is refused when its file is loaded;
* an unknown value is *absent* from the fact (never ``None``): rules test it with
  ``$nex``; booleans are ``true``/``false``; lists hold numbers;
* nothing here decides anything: a builder never says "too long" or "duplicate".
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Integer, and_, bindparam, case, func, or_, select
from sqlalchemy.orm import aliased, selectinload

from backoffice import clock
from backoffice.extensions import db
from backoffice.models import (LIVE_CANDIDATURE_STATES, Candidate, Candidature,
                               CandidatureState, Formation, FormationState, Session,
                               SessionState)
from backoffice.text import fold, name_key

EPOCH = dt.date(1970, 1, 1)
HSP = "HSP"

# The three title mentions of DOMAIN.md, longest first (the third contains the others'
# words). ``mention_intitule`` tells which one the title carries; the rules decide
# whether it is the right one.
TITLE_MENTIONS = (
    ("professionnalisation_ou_apprentissage",
     "(Contrat de professionnalisation ou Apprentissage possible)"),
    ("apprentissage", "(Contrat d'apprentissage possible)"),
    ("professionnalisation", "(Contrat de professionnalisation possible)"),
)


@dataclass(frozen=True)
class Field:
    kind: str  # texte, nombre, booleen, liste, jour (days since 1970-01-01), date (ISO)
    description: str


def _f(kind: str, description: str) -> Field:
    return Field(kind, description)


_TYPE = _f("texte", "type du fait")
_TODAY = _f("jour", "aujourd'hui (jours depuis le 01/01/1970, heure de Paris)")

_FORMATION_PUBLICATION = {
    "type": _TYPE,
    "formation_id": _f("nombre", "identifiant de la formation"),
    "reference": _f("texte", "référence de la formation (12 chiffres)"),
    "etat": _f("texte", "état de la formation (brouillon, validee, …)"),
    "intitule": _f("texte", "intitulé"),
    "longueur_intitule": _f("nombre", "nombre de caractères de l'intitulé"),
    "longueur_objectif": _f("nombre", "nombre de caractères de l'objectif (0 si vide)"),
    "longueur_programme": _f("nombre", "nombre de caractères du programme (0 si vide)"),
    "nb_certifications": _f("nombre", "nombre de certifications préparées"),
    "certification_code": _f("texte", "code Certif Info de la certification"),
    "certification_ouverte_apprentissage": _f("booleen",
                                              "la certification est ouverte à l'apprentissage"),
    "lien_web": _f("texte", "lien web tel que saisi"),
    "lien_web_schema": _f("texte", "début du lien web avant « :// » (http, https, ftp…)"),
    "lien_web_domaine": _f("texte", "nom de domaine du lien web"),
    "dispositif": _f("texte", "dispositif (HSP, conventionne_region, …)"),
    "organisme_formateur": _f("texte", "raison sociale de l'organisme formateur"),
    "siren_organisme_formateur": _f("texte", "SIREN de l'organisme formateur"),
    "siren_structure": _f("texte", "SIREN de l'organisme responsable (la structure)"),
    "autorisee_autre_siren": _f("booleen", "la structure peut déclarer un organisme "
                                           "formateur d'un autre SIREN"),
    "modalite_formation_continue": _f("booleen", "accessible en formation continue"),
    "modalite_contrat_pro": _f("booleen", "accessible en contrat de professionnalisation"),
    "modalite_apprentissage": _f("booleen", "accessible en contrat d'apprentissage"),
    "nb_modalites_renseignees": _f("nombre", "modalités d'accès renseignées (oui ou non)"),
    "nb_modalites_oui": _f("nombre", "modalités d'accès à « oui »"),
    "annees_cursus": _f("liste", "années de cursus ouvertes à l'apprentissage"),
    "nb_annees_cursus": _f("nombre", "nombre d'années de cursus indiquées"),
    "nb_sessions": _f("nombre", "nombre de sessions actives"),
    "mention_intitule": _f("texte", "mention portée par l'intitulé : aucune, apprentissage, "
                                    "professionnalisation, "
                                    "professionnalisation_ou_apprentissage"),
}
_SESSION_PUBLICATION = {
    "type": _TYPE,
    "session_id": _f("nombre", "identifiant de la session"),
    "reference": _f("texte", "référence de la session (8 chiffres)"),
    "jour_debut": _f("jour", "date de début"),
    "jour_fin": _f("jour", "date de fin"),
    "jour_aujourdhui": _TODAY,
    "adresse": _f("texte", "adresse du lieu de formation"),
    "commune": _f("texte", "commune du lieu de formation"),
    "code_postal": _f("texte", "code postal du lieu de formation"),
    "places": _f("nombre", "nombre de places"),
    "deja_validee": _f("booleen", "la session faisait déjà partie de la version validée de "
                                  "la formation (une session en cours peut y figurer)"),
}
_CANDIDATURE_CURSUS = {
    "type": _TYPE,
    "candidature_id": _f("nombre", "identifiant de la candidature"),
    "reference": _f("texte", "référence de la candidature"),
    "formation_reference": _f("texte", "référence de la formation visée"),
    "formation_apprentissage": _f("booleen", "la formation est accessible en contrat "
                                             "d'apprentissage"),
    "annee_cursus": _f("nombre", "année de cursus visée par la candidature"),
    "annees_ouvertes": _f("liste", "années de cursus ouvertes à l'apprentissage"),
    "nb_annees_ouvertes": _f("nombre", "nombre d'années de cursus ouvertes"),
}
_CANDIDATURE_LIMITS = {
    "type": _TYPE,
    "candidature_id": _f("nombre", "identifiant de la candidature"),
    "reference": _f("texte", "référence de la candidature"),
    "candidat": _f("texte", "nom et prénom du candidat"),
    "dispositif": _f("texte", "dispositif de la formation visée"),
    "jour_semaine": _f("nombre", "jour de la semaine à Paris (1 = lundi … 7 = dimanche)"),
    "heure": _f("texte", "heure à Paris, « HH:MM »"),
    "minute_du_jour": _f("nombre", "minutes écoulées depuis minuit à Paris"),
    "nb_en_attente_avis": _f("nombre", "autres candidatures du candidat en attente d'avis"),
    "nb_en_attente_avis_hsp": _f("nombre", "autres candidatures du candidat en attente "
                                           "d'avis sur le dispositif HSP"),
    "nb_en_cours_meme_session": _f("nombre", "autres candidatures en cours du candidat sur "
                                             "la même session (brouillon, en attente, "
                                             "retenue)"),
    "nb_non_retenues_meme_session": _f("nombre", "candidatures « non retenue » du candidat "
                                                 "sur la même session"),
    "session_reference": _f("texte", "référence de la session"),
    "session_ouverte": _f("booleen", "la session est ouverte aux candidatures"),
    "session_etat": _f("texte", "état de la session (active, annulee, supprimee)"),
    "jour_fin_session": _f("jour", "date de fin de la session"),
    "jour_aujourdhui": _TODAY,
    "places": _f("nombre", "places de la session"),
    "nb_retenues": _f("nombre", "candidatures retenues sur la session"),
    "point_entree_id": _f("nombre", "point d'entrée choisi"),
    "jour_point_entree": _f("jour", "date du point d'entrée choisi"),
    "prochain_point_entree_id": _f("nombre", "prochain point d'entrée à venir de la session"),
    "jour_prochain_point_entree": _f("jour", "date du prochain point d'entrée à venir"),
}
_CANDIDAT = {
    "type": _TYPE,
    "nom": _f("texte", "nom saisi"),
    "prenom": _f("texte", "prénom saisi"),
    "nom_normalise": _f("texte", "nom sans accents, majuscules, tirets ni espaces"),
    "prenom_normalise": _f("texte", "prénom sans accents, majuscules, tirets ni espaces"),
    "date_naissance": _f("date", "date de naissance (AAAA-MM-JJ)"),
    "identifiant_france_travail": _f("texte", "identifiant France Travail"),
}
_CANDIDAT_EXISTANT = {**_CANDIDAT, "candidat_id": _f("nombre", "identifiant du candidat "
                                                               "trouvé dans l'annuaire")}
_FORMATION_DOUBLON = {
    "type": _TYPE,
    "formation_id": _f("nombre", "identifiant de la formation"),
    "reference": _f("texte", "référence de la formation"),
    "intitule": _f("texte", "intitulé"),
    "certification_id": _f("nombre", "certification préparée"),
    "organisme_formateur_id": _f("nombre", "organisme formateur"),
}
_PAIRE_SESSIONS = {
    "type": _TYPE,
    "formation_existante_id": _f("nombre", "formation existante à laquelle appartient la "
                                           "seconde session"),
    "jour_debut": _f("jour", "début de la session de la formation examinée"),
    "jour_fin": _f("jour", "fin de la session de la formation examinée"),
    "autre_reference": _f("texte", "référence de la session existante"),
    "autre_jour_debut": _f("jour", "début de la session existante"),
    "autre_jour_fin": _f("jour", "fin de la session existante"),
}
_CANDIDATURE_DELAIS = {
    "type": _TYPE,
    "candidature_id": _f("nombre", "identifiant de la candidature"),
    "reference": _f("texte", "référence de la candidature"),
    "etat": _f("texte", "état de la candidature"),
    "jours_inactivite": _f("nombre", "jours depuis la dernière modification"),
    "jours_depuis_soumission": _f("nombre", "jours depuis la soumission"),
    "jours_depuis_entree_tardive": _f("nombre", "jours écoulés depuis la date d'entrée "
                                                "tardive de la session (négatif avant)"),
}
_FORMATION_DELAIS = {
    "type": _TYPE,
    "formation_id": _f("nombre", "identifiant de la formation"),
    "reference": _f("texte", "référence de la formation"),
    "etat": _f("texte", "état de la formation"),
    "jours_ouvres_en_moderation": _f("nombre", "jours ouvrés (lundi à vendredi) depuis "
                                               "l'envoi en modération"),
}
_CANDIDAT_DELAIS = {
    "type": _TYPE,
    "candidat_id": _f("nombre", "identifiant du candidat"),
    "annees_depuis_derniere_activite": _f("nombre", "années entières depuis la dernière "
                                                    "activité de candidature"),
}

# rule set → fact type → field → description. The rules engine refuses any other field.
SCHEMAS: dict[str, dict[str, dict[str, Field]]] = {
    "publication": {"formation": _FORMATION_PUBLICATION, "session": _SESSION_PUBLICATION},
    "cursus_eligibility": {"candidature": _CANDIDATURE_CURSUS},
    "candidature_limits": {"candidature": _CANDIDATURE_LIMITS},
    "duplicates": {"candidat": _CANDIDAT, "candidat_existant": _CANDIDAT_EXISTANT,
                   "formation": _FORMATION_DOUBLON, "formation_existante": _FORMATION_DOUBLON,
                   "paire_sessions": _PAIRE_SESSIONS},
    "deadlines": {"candidature": _CANDIDATURE_DELAIS, "formation": _FORMATION_DELAIS,
                  "candidat": _CANDIDAT_DELAIS},
}


# -- helpers ------------------------------------------------------------------------------
def day_number(value: dt.date | dt.datetime | None) -> int | None:
    """Days since 1970-01-01 (a datetime is read in Paris time)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = clock.to_local(value).date()
    return (value - EPOCH).days


def _today(at: dt.datetime | None) -> dt.date:
    return clock.to_local(at or clock.now()).date()


def _clean(fact: dict) -> dict:
    """Absent rather than ``None`` or blank (``$nex`` then means "not filled in")."""
    return {k: v for k, v in fact.items()
            if v is not None and not (isinstance(v, str) and not v.strip())}


def _text_length(value: str | None) -> int:
    return len(value.strip()) if value else 0


def _years(values: Iterable) -> list[int]:
    years = []
    for value in values or []:
        try:
            years.append(int(value))
        except (TypeError, ValueError):
            continue
    return sorted(set(years))


def title_mention(intitule: str | None) -> str:
    folded = fold(intitule)
    for code, mention in TITLE_MENTIONS:
        if fold(mention) in folded:
            return code
    return "aucune"


def working_days_between(start: dt.date, end: dt.date) -> int:
    """Monday–Friday days after ``start`` up to and including ``end`` (public holidays
    are not known to the application)."""
    if end <= start:
        return 0
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(1, rest + 1):
        if (start + dt.timedelta(days=offset)).isoweekday() <= 5:
            count += 1
    return count


def whole_years_between(start: dt.date, end: dt.date) -> int:
    years = end.year - start.year
    if (end.month, end.day) < (start.month, start.day):
        years -= 1
    return max(years, 0)


# -- publication ----------------------------------------------------------------------------
def publication_facts(formation: Formation, *, at: dt.datetime | None = None) -> list[dict]:
    """One ``formation`` fact, then one ``session`` fact per active session."""
    today = day_number(_today(at))
    structure = formation.structure
    formateur = formation.organisme_formateur
    certification = formation.certification
    modalities = (formation.modalite_formation_continue, formation.modalite_contrat_pro,
                  formation.modalite_apprentissage)
    years = _years(formation.annees_cursus)
    sessions = [s for s in formation.sessions if s.state == SessionState.ACTIVE]
    link = (formation.lien_web or "").strip()
    parts = urlsplit(link) if link else None
    facts = [_clean({
        "type": "formation",
        "formation_id": formation.id,
        "reference": formation.reference,
        "etat": formation.state,
        "intitule": formation.intitule,
        "longueur_intitule": _text_length(formation.intitule),
        "longueur_objectif": _text_length(formation.objectif),
        "longueur_programme": _text_length(formation.programme),
        "nb_certifications": 1 if certification is not None else 0,
        "certification_code": certification.code_certifinfo if certification else None,
        "certification_ouverte_apprentissage":
            bool(certification.ouverte_apprentissage) if certification else None,
        "lien_web": link,
        "lien_web_schema": parts.scheme.lower() if parts else None,
        "lien_web_domaine": (parts.hostname or "") if parts else None,
        "dispositif": formation.dispositif,
        "organisme_formateur": formateur.raison_sociale if formateur else None,
        "siren_organisme_formateur": formateur.siren if formateur else None,
        "siren_structure": structure.siren if structure else None,
        "autorisee_autre_siren": bool(structure.autorisee_autre_siren) if structure else False,
        "modalite_formation_continue": formation.modalite_formation_continue,
        "modalite_contrat_pro": formation.modalite_contrat_pro,
        "modalite_apprentissage": formation.modalite_apprentissage,
        "nb_modalites_renseignees": sum(1 for m in modalities if m is not None),
        "nb_modalites_oui": sum(1 for m in modalities if m),
        "annees_cursus": years,
        "nb_annees_cursus": len(years),
        "nb_sessions": len(sessions),
        "mention_intitule": title_mention(formation.intitule),
    })]
    for session in sessions:
        commune = session.commune
        facts.append(_clean({
            "type": "session",
            "session_id": session.id,
            "reference": session.reference,
            "jour_debut": day_number(session.date_debut),
            "jour_fin": day_number(session.date_fin),
            "jour_aujourdhui": today,
            "adresse": session.adresse,
            "commune": commune.nom if commune else None,
            "code_postal": commune.code_postal if commune else None,
            "places": session.places,
            "deja_validee": bool(formation.validated_at and session.created_at
                                 and session.created_at <= formation.validated_at),
        }))
    return facts


# -- cursus_eligibility ------------------------------------------------------------------
def cursus_facts(candidature: Candidature) -> list[dict]:
    formation = candidature.session.formation
    years = _years(formation.annees_cursus)
    return [_clean({
        "type": "candidature",
        "candidature_id": candidature.id,
        "reference": candidature.reference,
        "formation_reference": formation.reference,
        "formation_apprentissage": bool(formation.modalite_apprentissage),
        "annee_cursus": candidature.annee_cursus,
        "annees_ouvertes": years,
        "nb_annees_ouvertes": len(years),
    })]


# -- candidature_limits -------------------------------------------------------------------
def candidature_limits_facts(candidature: Candidature, *, at: dt.datetime | None = None
                             ) -> list[dict]:
    """The candidature with the candidate's other candidatures counted in SQL, the state
    of the session and its entry points, and the Paris weekday and time of ``at``."""
    at = at or clock.now()
    local = clock.to_local(at)
    today = local.date()
    session = candidature.session
    formation = session.formation
    candidate = candidature.candidate
    candidate_id = candidature.candidate_id or (candidate.id if candidate else None)
    session_id = session.id

    counts = _candidate_counts(candidate_id, session_id, exclude_id=candidature.id)

    upcoming = [p for p in session.entry_points if p.date_entree >= today]
    chosen = candidature.entry_point
    return [_clean({
        "type": "candidature",
        "candidature_id": candidature.id,
        "reference": candidature.reference,
        "candidat": f"{candidate.nom.upper()} {candidate.prenom}" if candidate else None,
        "dispositif": formation.dispositif,
        "jour_semaine": local.isoweekday(),
        "heure": local.strftime("%H:%M"),
        "minute_du_jour": local.hour * 60 + local.minute,
        **counts,
        "session_reference": session.reference,
        "session_ouverte": bool(session.ouverte_candidature),
        "session_etat": session.state,
        "jour_fin_session": day_number(session.date_fin),
        "jour_aujourdhui": day_number(today),
        "places": session.places,
        "nb_retenues": counts.pop("nb_retenues"),
        "point_entree_id": chosen.id if chosen else None,
        "jour_point_entree": day_number(chosen.date_entree) if chosen else None,
        "prochain_point_entree_id": upcoming[0].id if upcoming else None,
        "jour_prochain_point_entree": day_number(upcoming[0].date_entree) if upcoming else None,
    })]


def _counts_statement():
    """The statement of ``_candidate_counts``, built once with bound parameters (building
    it cost ~2 ms a call, more than running it). A NULL candidate or session matches no
    row: its counts are 0."""
    candidate_id, session_id, exclude_id = (bindparam(name, type_=Integer) for name in (
        "candidate_id", "session_id", "exclude_id"))
    of_session = aliased(Candidature)
    retained = select(func.count(of_session.id)).where(
        of_session.session_id == session_id, of_session.state == CandidatureState.RETENUE,
        of_session.id != exclude_id).scalar_subquery()
    waiting = Candidature.state == CandidatureState.EN_ATTENTE_AVIS
    same_session = Candidature.session_id == session_id

    def total(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return (select(total(waiting),
                   total(and_(waiting, Formation.dispositif == HSP)),
                   total(and_(same_session, Candidature.state.in_(LIVE_CANDIDATURE_STATES))),
                   total(and_(same_session, Candidature.state == CandidatureState.NON_RETENUE)),
                   func.coalesce(retained, 0))
            .select_from(Candidature)
            .join(Session, Session.id == Candidature.session_id)
            .join(Formation, Formation.id == Session.formation_id)
            .where(Candidature.candidate_id == candidate_id, Candidature.id != exclude_id))


_COUNTS = _counts_statement()
_COUNT_NAMES = ("nb_en_attente_avis", "nb_en_attente_avis_hsp", "nb_en_cours_meme_session",
                "nb_non_retenues_meme_session", "nb_retenues")


def _candidate_counts(candidate_id: int | None, session_id: int | None,
                      exclude_id: int | None) -> dict[str, int]:
    """The candidate's other candidatures counted by kind, and the ``retenue``
    candidatures of the session (``nb_retenues``), in one query."""
    row = db.session.execute(_COUNTS, {"candidate_id": candidate_id, "session_id": session_id,
                                       "exclude_id": exclude_id or -1}).one()
    return {name: int(value or 0) for name, value in zip(_COUNT_NAMES, row)}


# -- duplicates ------------------------------------------------------------------------------
def _candidate_fact(kind: str, candidate=None, **values) -> dict:
    if candidate is not None:
        values = dict(nom=candidate.nom, prenom=candidate.prenom,
                      date_naissance=candidate.date_naissance,
                      identifiant_france_travail=candidate.identifiant_france_travail,
                      candidat_id=candidate.id if kind == "candidat_existant" else None)
    birth = values.get("date_naissance")
    return _clean({
        "type": kind,
        "candidat_id": values.get("candidat_id"),
        "nom": values.get("nom"),
        "prenom": values.get("prenom"),
        "nom_normalise": name_key(values.get("nom")),
        "prenom_normalise": name_key(values.get("prenom")),
        "date_naissance": birth.isoformat() if birth else None,
        "identifiant_france_travail": (values.get("identifiant_france_travail") or "").strip(),
    })


def candidate_duplicate_facts(*, nom: str, prenom: str, date_naissance: dt.date | None,
                              identifiant_france_travail: str | None = None,
                              exclude_id: int | None = None, limit: int = 20) -> list[dict]:
    """The candidate being entered, then the directory entries that may be the same
    person, found in SQL on the indexed columns: same normalised name and birth date, or
    the same France Travail identifier. The rules say which ones are duplicates."""
    facts = [_candidate_fact("candidat", nom=nom, prenom=prenom,
                             date_naissance=date_naissance,
                             identifiant_france_travail=identifiant_france_travail)]
    conditions = []
    if date_naissance is not None and name_key(nom):
        conditions.append(and_(Candidate.nom_normalise == name_key(nom),
                               Candidate.date_naissance == date_naissance))
    identifier = (identifiant_france_travail or "").strip()
    if identifier:
        conditions.append(Candidate.identifiant_france_travail == identifier)
    if not conditions:
        return facts
    query = (select(Candidate).where(or_(*conditions), Candidate.anonymised_at.is_(None))
             .order_by(Candidate.id).limit(limit))
    if exclude_id is not None:
        query = query.where(Candidate.id != exclude_id)
    facts.extend(_candidate_fact("candidat_existant", candidate)
                 for candidate in db.session.scalars(query))
    return facts


def candidate_self_duplicate_facts(candidate: Candidate) -> list[dict]:
    """Duplicate facts for a candidate already in the directory (try-outs, checks)."""
    return candidate_duplicate_facts(
        nom=candidate.nom, prenom=candidate.prenom, date_naissance=candidate.date_naissance,
        identifiant_france_travail=candidate.identifiant_france_travail,
        exclude_id=candidate.id)


def formation_duplicate_facts(formation: Formation, *, limit: int = 20) -> list[dict]:
    """The formation, the other live formations with the same certification and the same
    organisme formateur (SQL), and one ``paire_sessions`` fact per pair (session of this
    formation, session of the other one) so that the rules can compare their dates."""
    def formation_fact(kind: str, f: Formation) -> dict:
        # An unsaved formation has its relations but not yet their ids.
        certification = f.certification_id or (f.certification.id if f.certification else None)
        formateur = f.organisme_formateur_id or (
            f.organisme_formateur.id if f.organisme_formateur else None)
        return _clean({"type": kind, "formation_id": f.id, "reference": f.reference,
                       "intitule": f.intitule, "certification_id": certification,
                       "organisme_formateur_id": formateur})

    facts = [formation_fact("formation", formation)]
    certification_id = facts[0].get("certification_id")
    formateur_id = facts[0].get("organisme_formateur_id")
    if certification_id is None or formateur_id is None:
        return facts
    own = [s for s in formation.sessions if s.state == SessionState.ACTIVE]
    if not own:
        return facts
    others = db.session.scalars(
        select(Formation).options(selectinload(Formation.sessions))
        .where(Formation.certification_id == certification_id,
               Formation.organisme_formateur_id == formateur_id,
               Formation.id != (formation.id or -1),
               Formation.state.notin_((FormationState.SUPPRIMEE, FormationState.ARCHIVEE)))
        .order_by(Formation.id).limit(limit)).all()
    for other in others:
        facts.append(formation_fact("formation_existante", other))
        for theirs in other.sessions:
            if theirs.state != SessionState.ACTIVE:
                continue
            for mine in own:
                facts.append({
                    "type": "paire_sessions", "formation_existante_id": other.id,
                    "jour_debut": day_number(mine.date_debut),
                    "jour_fin": day_number(mine.date_fin),
                    "autre_reference": theirs.reference,
                    "autre_jour_debut": day_number(theirs.date_debut),
                    "autre_jour_fin": day_number(theirs.date_fin),
                })
    return facts


# -- deadlines ------------------------------------------------------------------------------
def deadline_facts(obj, *, at: dt.datetime | None = None) -> list[dict]:
    """Ages of a candidature, formation or candidate, for the ``deadlines`` rule set."""
    at = at or clock.now()
    today = _today(at)

    def days_since(instant):
        return None if instant is None else (today - clock.to_local(instant).date()).days

    if isinstance(obj, Candidature):
        late_entry = obj.session.date_entree_tardive if obj.session else None
        return [_clean({
            "type": "candidature", "candidature_id": obj.id, "reference": obj.reference,
            "etat": obj.state,
            "jours_inactivite": days_since(obj.updated_at or obj.created_at),
            "jours_depuis_soumission": days_since(obj.submitted_at),
            "jours_depuis_entree_tardive":
                (today - late_entry).days if late_entry is not None else None,
        })]
    if isinstance(obj, Formation):
        submitted = obj.submitted_at
        return [_clean({
            "type": "formation", "formation_id": obj.id, "reference": obj.reference,
            "etat": obj.state,
            "jours_ouvres_en_moderation": None if submitted is None else working_days_between(
                clock.to_local(submitted).date(), today),
        })]
    if isinstance(obj, Candidate):
        last = obj.last_activity_at or obj.created_at
        return [_clean({
            "type": "candidat", "candidat_id": obj.id,
            "annees_depuis_derniere_activite": None if last is None else whole_years_between(
                clock.to_local(last).date(), today),
        })]
    raise TypeError(f"pas de faits d'échéance pour {type(obj).__name__}")

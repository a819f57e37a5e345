"""Notifications: e-mails and regional hub messages, queued in ``OutboundMessage``.

``queue_email`` renders a French message from ``templates/emails/<name>.txt`` and
``.html``; the scheduled sending job delivers the queue. Links in messages are built with
``links.public_url`` (the configured public address, never the request's host). A
single-use link (``links.secret_url``) goes in ``queue_email(links={"url": …})``, never in
the template context: the stored bodies, which staff read in the admin, show
« lien masqué » in its place, and the real link is sealed until the message is handed to
SMTP (see ``backoffice/links.py``). The side effects named in the
workflow files (``effets:``) are registered here with ``@side_effect`` (and, for the
scheduled jobs' batches, their set-based form with ``@side_effect_many``). Within
``keys_known`` (a job's batch) the idempotency keys are read once, the e-mails of one
template rendered from one stencil (``render_email(varying=…)``) and the messages
inserted in one statement. No message ever carries the NIR.
"""
from __future__ import annotations

import contextlib
import contextvars
import enum

from flask import current_app
from markupsafe import escape
from sqlalchemy import select

from backoffice import clock
from backoffice.extensions import db
from backoffice.links import SecretUrl, placeholders, seal
from backoffice.models import (AccountRequest, Candidate, Candidature, Channel, Delegation,
                               Dispositif, Formation, Membership, OfProfile, OutboundMessage,
                               PrescriberProfile, RequestState, Session, StaffRole, Structure,
                               User, UserState)
from backoffice.workflow import side_effect, side_effect_many

HUB_DISPOSITIFS = (Dispositif.HSP, Dispositif.CONVENTIONNE_REGION)  # region-funded offer


def render_email(template: str, *, varying=(), **context) -> tuple[str, str]:
    """The text and HTML bodies of ``templates/emails/<template>``, rendered by the
    application's Jinja environment directly: an e-mail reads only the variables it is
    given (no request, ``g`` or context processor; ``flask.render_template``'s context
    update and signals cost more than the rendering itself, per message of a job).

    ``varying``: the variables that change from one message of a job to the next, each a
    string the templates only print (``{{ name }}``: no filter, test or attribute on it).
    Within ``keys_known`` the bodies are then rendered once per template and other
    variables (a *stencil*, markers in place of the varying ones) and each message's are
    the stencil with its values put in, HTML-escaped in the HTML body as Jinja would."""
    if varying and _stencils.get() is not None:
        bodies = _from_stencil(template, context, varying)
        if bodies is not None:
            return bodies
    return _render(template, context)


def _render(template: str, context: dict) -> tuple[str, str]:
    environment = current_app.jinja_env
    return (environment.get_template(f"emails/{template}.txt").render(context),
            environment.get_template(f"emails/{template}.html").render(context))


_MARKERS = ("\ue000{}\ue001", "\ue002{}\ue003")  # private-use characters: in no template
_stencils: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "email_stencils", default=None)


def _from_stencil(template: str, context: dict, varying) -> tuple[str, str] | None:
    """The bodies of ``template`` from its stencil for the other variables of ``context``,
    or ``None`` when they cannot be (a varying value empty or not a string, another value
    not hashable, or a template that does more than print a varying variable)."""
    values = {name: context[name] for name in varying}
    if not all(isinstance(value, str) and value and "\ue000" not in value
               for value in values.values()):
        return None  # an empty value could change an {% if %}: rendered as it is
    key = (template, tuple(sorted((name, value) for name, value in context.items()
                                  if name not in values)))
    stencils = _stencils.get()
    try:
        stencil = stencils.get(key)
    except TypeError:  # an unhashable value: no stencil
        return None
    if stencil is None:
        stencil = stencils[key] = _stencil(template, context, values)
    if stencil is False:
        return None
    text, html = stencil
    for name, value in values.items():
        marker = _MARKERS[0].format(name)
        text, html = text.replace(marker, value), html.replace(marker, str(escape(value)))
    return text, html


def _stencil(template: str, context: dict, values: dict) -> tuple[str, str] | bool:
    """``template`` rendered with markers in place of ``values``, checked by a second
    rendering with other markers: the same bodies, marker for marker, or ``False``."""
    first, second = (_render(template, {**context, **{name: marker.format(name)
                                                        for name in values}})
                     for marker in _MARKERS)

    def swapped(body: str) -> str:
        for name in values:
            body = body.replace(_MARKERS[0].format(name), _MARKERS[1].format(name))
        return body
    return first if tuple(map(swapped, first)) == second else False


def transition_email_context(workflow, transition, *, description: str, reason: str | None,
                             at) -> dict:
    """Subject and template context of the e-mail announcing a transition (``sentence``:
    the description with a capital, as the e-mail's sentence starts)."""
    return {"subject": f"{workflow.label} : {transition.label}", "description": description,
            "sentence": description[:1].upper() + description[1:],
            "transition": transition, "state_label": workflow.state_label(transition.target),
            "reason": reason, "at": clock.format_local(at)}


def queue_email(recipient: str, template: str, *, subject: str, related=None,
                idempotency_key: str | None = None, links: dict[str, str] | None = None,
                varying=(), **context) -> OutboundMessage | dict | None:
    """Queue one e-mail (once per ``idempotency_key`` when given). ``links`` are the
    single-use links, by template variable: rendered « lien masqué » in the stored bodies,
    kept sealed for the sending job. ``related``: the object the message is about, or its
    ``(related_type, related_id)``. Returns the message (within ``keys_known``, its
    values: it is inserted with the others at the end), ``None`` when not queued."""
    if not recipient:
        return None
    leaked = [name for name, value in context.items() if isinstance(value, SecretUrl)]
    if leaked:
        raise ValueError(f"Lien à usage unique dans le contexte du courriel "
                         f"({', '.join(leaked)}) : passez-le dans links=.")
    if idempotency_key and queued_keys([idempotency_key]):
        return None
    links = links or {}
    shown = placeholders(links)
    bodies = render_email(template, subject=subject, varying=varying, **context, **shown)
    unused = [name for name, text in shown.items() if text not in bodies[0] + bodies[1]]
    if unused:
        raise ValueError(f"Le modèle {template} n'utilise pas le lien {', '.join(unused)}.")
    return _add_email(recipient, subject, bodies, related=related,
                      idempotency_key=idempotency_key,
                      sealed_links=seal(links, shown) if links else None)


_known_keys: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "known_keys", default=None)


@contextlib.contextmanager
def keys_known(related_type: str, related_ids):
    """Within, ``queued_keys`` answers without a query: every idempotency key already
    queued for the objects ``related_ids`` (which the messages queued inside are about)
    is read once here, and those queued inside are added (the scheduled jobs, one batch
    of objects at a time)."""
    ids = list(related_ids)
    known = set(db.session.scalars(select(OutboundMessage.idempotency_key).where(
        OutboundMessage.related_type == related_type, OutboundMessage.related_id.in_(ids),
        OutboundMessage.idempotency_key.is_not(None)))) if ids else set()
    pending: list[dict] = []
    token = _known_keys.set(known)
    pending_token = _pending.set(pending)
    stencils_token = _stencils.set({})
    try:
        yield
    finally:
        _known_keys.reset(token)
        _pending.reset(pending_token)
        _stencils.reset(stencils_token)
    if pending:
        _insert_messages(pending)


def _insert_messages(rows: list[dict]) -> None:
    """Insert the messages ``rows`` (each the values of the same columns) in one
    statement: an executemany, or on PostgreSQL one ``COPY … FROM STDIN`` (psycopg runs
    an executemany row by row: 310 µs a message against 50–120 µs by COPY, measured on
    6,000 e-mails of the demo data), each value bound by its column's type as an INSERT
    would, the columns' Python defaults computed (COPY knows only the server's)."""
    table = OutboundMessage.__table__
    if db.engine.dialect.name != "postgresql":
        db.session.execute(table.insert(), rows)
        return
    db.session.flush()  # what the session holds goes first, as before an INSERT
    given = list(rows[0])
    defaults = {column.key: column.default for column in table.columns
                if column.key not in given and column.default is not None
                and not column.primary_key}
    names = given + list(defaults)
    dialect = db.engine.dialect
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                  for name in names]

    def bound(value, process):
        value = process(value) if process is not None else value
        return value.value if isinstance(value, enum.Enum) else value
    cursor = db.session.connection().connection.dbapi_connection.cursor()
    with cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            values = [row[name] for name in given] + [
                default.arg(None) if default.is_callable else default.arg
                for default in defaults.values()]
            copy.write_row([bound(value, process) for value, process in zip(values, processors)])


def queue_email_to_each(keys: dict[str, str], template: str, *, subject: str, related,
                        varying=(), **context) -> int:
    """The same e-mail to each recipient of ``keys`` (recipient → idempotency key), once
    per key: the keys checked in one query, the bodies rendered once (they do not depend
    on the recipient; ``varying``: see ``render_email``). Returns how many were queued."""
    leaked = [name for name, value in context.items() if isinstance(value, SecretUrl)]
    if leaked:
        raise ValueError(f"Lien à usage unique dans le contexte du courriel "
                         f"({', '.join(leaked)}) : passez-le dans links=.")
    keys = {recipient: key for recipient, key in keys.items() if recipient}
    queued = queued_keys(keys.values())
    keys = {recipient: key for recipient, key in keys.items() if key not in queued}
    if keys:
        bodies = render_email(template, subject=subject, varying=varying, **context)
        for recipient, key in keys.items():
            _add_email(recipient, subject, bodies, related=related, idempotency_key=key)
    return len(keys)


def queued_keys(keys) -> set[str]:
    """Those of the idempotency ``keys`` already queued (one query, or none within
    ``keys_known``)."""
    keys = list(keys)
    known = _known_keys.get()
    if known is not None:
        return {key for key in keys if key in known}
    return set(db.session.scalars(select(OutboundMessage.idempotency_key).where(
        OutboundMessage.idempotency_key.in_(keys)))) if keys else set()


_pending: contextvars.ContextVar[list[dict] | None] = contextvars.ContextVar(
    "pending_messages", default=None)


def _related(related) -> tuple[str | None, int | None]:
    """``(related_type, related_id)`` of the object a message is about: an ORM object, or
    already the pair (the jobs read plain rows, not objects)."""
    if related is None:
        return None, None
    if isinstance(related, tuple):
        return related
    return type(related).__name__.lower(), related.id


def _queued(values: dict) -> OutboundMessage | dict:
    """Queue the message of ``values`` (a value for each column the queue sets): added to
    the session as an ``OutboundMessage``, or within ``keys_known`` kept as plain values
    for its single INSERT at the end (no ORM object per message), and returned as such."""
    pending = _pending.get()
    if pending is None:  # (an e-mail's payload left unset, SQL NULL, as ever)
        message = OutboundMessage(**{column: value for column, value in values.items()
                                     if value is not None or column != "payload"})
        db.session.add(message)
        return message
    pending.append(values)
    if values["idempotency_key"]:
        _known_keys.get().add(values["idempotency_key"])
    return values


def _add_email(recipient: str, subject: str, bodies: tuple[str, str], *, related,
               idempotency_key: str | None, sealed_links=None) -> OutboundMessage | dict:
    related_type, related_id = _related(related)
    return _queued({"channel": Channel.EMAIL, "recipient": recipient, "subject": subject,
                    "body_text": bodies[0], "body_html": bodies[1], "payload": None,
                    "sealed_links": sealed_links, "related_type": related_type,
                    "related_id": related_id, "idempotency_key": idempotency_key,
                    "next_attempt_at": clock.now()})


def queue_hub_message(payload: dict, *, related, idempotency_key: str
                      ) -> OutboundMessage | dict | None:
    if queued_keys([idempotency_key]):
        return None
    related_type, related_id = _related(related)
    return _queued({"channel": Channel.HUB, "recipient": "hub", "subject": payload.get("type"),
                    "body_text": None, "body_html": None, "payload": payload,
                    "sealed_links": None, "related_type": related_type,
                    "related_id": related_id, "idempotency_key": idempotency_key,
                    "next_attempt_at": clock.now()})


# -- recipients ---------------------------------------------------------------------------
def _emails(query) -> list[str]:
    return sorted(set(db.session.scalars(query)))


def members_by_structure(structure_ids, *, of_profiles=(), prescriber_profiles=(),
                         referents=False) -> dict[int, list[str]]:
    """The e-mails of the active members of each of ``structure_ids`` with one of the
    profiles (or référents), by structure (one query)."""
    from sqlalchemy import or_

    conditions = []
    if of_profiles:
        conditions.append(Membership.profile_of.in_(of_profiles))
    if prescriber_profiles:
        conditions.append(Membership.profile_prescripteur.in_(prescriber_profiles))
    if referents:
        conditions.append(Membership.is_referent.is_(True))
    found: dict[int, set[str]] = {}
    for structure_id, email in db.session.execute(
            select(Membership.structure_id, User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.structure_id.in_(list(structure_ids)),
                   User.state == UserState.ACTIF, or_(*conditions))):
        found.setdefault(structure_id, set()).add(email)
    return {structure_id: sorted(emails) for structure_id, emails in found.items()}


def _structure_members(structure_ids, **profiles) -> list[str]:
    return sorted({email for emails in members_by_structure(structure_ids, **profiles).values()
                   for email in emails})


def _moderators() -> list[str]:
    return _emails(select(User.email).where(User.staff_role == StaffRole.MODERATEUR,
                                            User.state == UserState.ACTIF))


def _describe_candidature(reference, prenom, nom, session_reference) -> str:
    return f"la candidature {reference} de {prenom} {nom.upper()} (session {session_reference})"


def _describe_delegation(role, siret_etablissement) -> str:
    return f"la délégation du rôle {role} sur le SIRET {siret_etablissement}"


def _describe(obj) -> str:
    if isinstance(obj, Formation):
        return f"la formation {obj.reference} « {obj.intitule} »"
    if isinstance(obj, Candidature):
        return _describe_candidature(obj.reference, obj.candidate.prenom, obj.candidate.nom,
                                     obj.session.reference)
    if isinstance(obj, Delegation):
        return _describe_delegation(obj.role, obj.siret_etablissement)
    if isinstance(obj, User):
        return "votre compte"
    return "votre demande"


def _notify(recipients, obj, transition, reason, log) -> None:
    from backoffice.workflow import workflow_for

    context = transition_email_context(workflow_for(obj), transition, description=_describe(obj),
                                       reason=reason, at=log.at)
    queue_email_to_each({recipient: f"transition:{log.id}:{recipient}"
                         for recipient in recipients}, "transition", related=obj, **context)


def _notify_each(model, notices, transition, reason, logs) -> None:
    """``_notify`` for each object of a batch (``fire_many``): ``notices`` are the
    ``{object id: (recipients, description)}``, ``logs`` the ``{object id: (log id, at)}``;
    the same subject, bodies, keys and relation as ``_notify`` on each object."""
    from backoffice.workflow import workflow_for

    workflow, related_type = workflow_for(model), model.__name__.lower()
    for ident, (log_id, at) in logs.items():
        if ident not in notices:
            continue
        recipients, description = notices[ident]
        context = transition_email_context(workflow, transition, description=description,
                                           reason=reason, at=at)
        queue_email_to_each({recipient: f"transition:{log_id}:{recipient}"
                             for recipient in recipients}, "transition",
                            related=(related_type, ident),
                            varying=("description", "sentence"), **context)


def _candidature_rows(ids, shared: dict) -> dict:
    """What the effects of a candidature's transition read, for the candidatures ``ids``,
    as plain rows in one query (kept in ``shared`` for the other effects of the batch)."""
    if "candidatures" not in shared:
        shared["candidatures"] = {row.id: row for row in db.session.execute(
            select(Candidature.id, Candidature.reference, Candidature.envoi_recapitulatif,
                   User.email.label("prescriber_email"), Candidate.prenom, Candidate.nom,
                   Candidate.email.label("candidate_email"), Candidate.inscrit_france_travail,
                   Candidate.identifiant_france_travail, Candidate.identifiant_regional,
                   Candidate.date_naissance, Session.reference.label("session_reference"),
                   Formation.reference.label("formation_reference"), Formation.dispositif,
                   Structure.siret.label("prescriber_siret"))
            .join(Candidate, Candidate.id == Candidature.candidate_id)
            .join(Session, Session.id == Candidature.session_id)
            .join(Formation, Formation.id == Session.formation_id)
            .join(User, User.id == Candidature.prescriber_user_id)
            .join(Structure, Structure.id == Candidature.prescriber_structure_id)
            .where(Candidature.id.in_(list(ids))))}
    return shared["candidatures"]


def _delegation_rows(ids, shared: dict) -> dict:
    if "delegations" not in shared:
        shared["delegations"] = {row.id: row for row in db.session.execute(
            select(Delegation.id, Delegation.role, Delegation.siret_etablissement,
                   Delegation.email_tiers, User.email.label("granted_by_email"))
            .join(User, User.id == Delegation.granted_by_id)
            .where(Delegation.id.in_(list(ids))))}
    return shared["delegations"]


def _candidature_description(row) -> str:
    return _describe_candidature(row.reference, row.prenom, row.nom, row.session_reference)


@side_effect("notifier_moderateurs")
def notify_moderators(obj, *, transition, actor, reason, log):
    _notify(_moderators(), obj, transition, reason, log)


@side_effect("notifier_of")
def notify_of(obj, *, transition, actor, reason, log):
    from backoffice.workflow import _of_structures

    profiles = ((OfProfile.PREINSCRIPTION, OfProfile.GENERAL) if isinstance(obj, Candidature)
                else (OfProfile.CATALOGUE, OfProfile.GENERAL))
    _notify(_structure_members(_of_structures(obj), of_profiles=profiles), obj, transition,
            reason, log)


@side_effect("notifier_prescripteur")
def notify_prescriber(obj, *, transition, actor, reason, log):
    _notify([obj.prescriber_user.email], obj, transition, reason, log)


@side_effect_many("notifier_prescripteur")
def notify_prescribers(model, logs, *, transition, reason, shared):
    rows = _candidature_rows(logs, shared)
    _notify_each(model, {ident: ([row.prescriber_email], _candidature_description(row))
                         for ident, row in rows.items()}, transition, reason, logs)


@side_effect("notifier_valideurs")
def notify_validators(obj, *, transition, actor, reason, log):
    _notify(_structure_members([obj.prescriber_structure_id],
                               prescriber_profiles=(PrescriberProfile.N3,)),
            obj, transition, reason, log)


@side_effect("notifier_candidat")
def notify_candidate(obj, *, transition, actor, reason, log):
    if obj.envoi_recapitulatif and obj.candidate.email:
        _notify([obj.candidate.email], obj, transition, reason, log)


@side_effect("message_hub")
def queue_for_hub(obj, *, transition, actor, reason, log):
    """Candidatures on region-funded offer for candidates registered at France Travail,
    and every avis on them, go to the regional hub (Agora)."""
    formation, candidate = obj.session.formation, obj.candidate
    _queue_for_hub(
        transition=transition, reason=reason, log_id=log.id, at=log.at, ident=obj.id,
        state=obj.state, reference=obj.reference, session_reference=obj.session.reference,
        formation_reference=formation.reference, dispositif=formation.dispositif,
        inscrit_france_travail=candidate.inscrit_france_travail,
        identifiant_france_travail=candidate.identifiant_france_travail,
        identifiant_regional=candidate.identifiant_regional, nom=candidate.nom,
        prenom=candidate.prenom, date_naissance=candidate.date_naissance,
        prescriber_siret=obj.prescriber_structure.siret)


@side_effect_many("message_hub")
def queue_many_for_hub(model, logs, *, transition, reason, shared):
    rows = _candidature_rows(logs, shared)
    for ident, (log_id, at) in logs.items():
        row = rows[ident]
        _queue_for_hub(
            transition=transition, reason=reason, log_id=log_id, at=at, ident=ident,
            state=transition.target, reference=row.reference,
            session_reference=row.session_reference,
            formation_reference=row.formation_reference, dispositif=row.dispositif,
            inscrit_france_travail=row.inscrit_france_travail,
            identifiant_france_travail=row.identifiant_france_travail,
            identifiant_regional=row.identifiant_regional, nom=row.nom, prenom=row.prenom,
            date_naissance=row.date_naissance, prescriber_siret=row.prescriber_siret)


def _queue_for_hub(*, transition, reason, log_id, at, ident, state, reference,
                   session_reference, formation_reference, dispositif, inscrit_france_travail,
                   prescriber_siret, **candidate) -> None:
    if dispositif not in HUB_DISPOSITIFS or not inscrit_france_travail:
        return
    payload = hub_payload(
        event=transition.name, state=state, reference=reference, at=at,
        session=session_reference, formation=formation_reference, dispositif=dispositif,
        reason=reason, prescriber_siret=prescriber_siret, **candidate)
    queue_hub_message(payload, related=("candidature", ident), idempotency_key=f"hub:{log_id}")


def hub_payload(*, event, state, reference, at, session, formation, dispositif, reason,
                identifiant_france_travail, identifiant_regional, nom, prenom, date_naissance,
                prescriber_siret) -> dict:
    """The JSON message sent to the regional hub for a candidature (documented in the
    README). Never the NIR."""
    return {
        "type": "candidature", "evenement": event, "etat": state, "reference": reference,
        "date": at.isoformat(), "session": session, "formation": formation,
        "dispositif": dispositif, "motif": reason,
        "candidat": {"identifiant_france_travail": identifiant_france_travail,
                     "identifiant_regional": identifiant_regional, "nom": nom,
                     "prenom": prenom, "date_naissance": date_naissance.isoformat()},
        "prescripteur": {"siret": prescriber_siret},
    }


@side_effect("notifier_demandeur")
def notify_requester(obj, *, transition, actor, reason, log):
    user = getattr(obj, "user", None) or getattr(obj, "requester", None)
    if user is not None:
        _notify([user.email], obj, transition, reason, log)


@side_effect("notifier_utilisateur")
def notify_user(obj, *, transition, actor, reason, log):
    _notify([obj.email], obj, transition, reason, log)


@side_effect("notifier_valideurs_compte")
def notify_account_validators(obj, *, transition, actor, reason, log):
    """The référents of the structures the user asked to join; moderators when a structure
    has no référent yet (first account)."""
    structure_ids = set(db.session.scalars(select(AccountRequest.structure_id).where(
        AccountRequest.user_id == obj.id, AccountRequest.state == RequestState.EN_ATTENTE)))
    referents = _structure_members(structure_ids, referents=True) if structure_ids else []
    _notify(referents or _moderators(), obj, transition, reason, log)


@side_effect("notifier_tiers")
def notify_third_party(obj, *, transition, actor, reason, log):
    _notify([obj.email_tiers], obj, transition, reason, log)


def _notify_delegations(model, logs, transition, reason, shared, recipient: str) -> None:
    """Each delegation's e-mail to the address in its ``recipient`` column."""
    rows = _delegation_rows(logs, shared)
    _notify_each(model, {ident: ([getattr(row, recipient)], _describe_delegation(
        row.role, row.siret_etablissement)) for ident, row in rows.items()},
        transition, reason, logs)


@side_effect_many("notifier_tiers")
def notify_third_parties(model, logs, *, transition, reason, shared):
    _notify_delegations(model, logs, transition, reason, shared, "email_tiers")


@side_effect("notifier_delegant")
def notify_delegator(obj, *, transition, actor, reason, log):
    _notify([obj.granted_by.email], obj, transition, reason, log)


@side_effect_many("notifier_delegant")
def notify_delegators(model, logs, *, transition, reason, shared):
    _notify_delegations(model, logs, transition, reason, shared, "granted_by_email")

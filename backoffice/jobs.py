"""The scheduled jobs and their schedule (one list: ``SCHEDULE``).

Each job takes ``at`` (the instant it runs for), a batch size and ``dry_run``; selects
due rows in SQL in id order (their ids in one query, then each batch by primary key with
the due condition again, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: ``_id_batches``), as
plain rows of the columns it needs; commits per batch; changes states only through the
workflow, set-based per batch (``workflow.fire_many``: every change is in the transition
log, the e-mails of a batch rendered once per template and inserted in one statement);
and is idempotent: due rows are selected by state, and reminders carry
an idempotency key, so a second run at the same instant changes and sends nothing. A run
killed mid-way left only whole batches committed: the next run finishes the work (the
killed one is shown « Interrompue » once its heartbeat stops, see ``tasks.py``). After each
batch, ``tasks.pause_after_batch()`` leaves the database to the pages a moment if
configured.

The outbound queue (``send_emails``, ``deliver_hub_messages``) is delivered exactly once,
whatever runs at the same time (the scheduler's run, « Lancer maintenant », a second
``backoffice jobs run``): each message is claimed with a lease (``claim_token``,
``claimed_until`` = now + ``LEASE``) committed before it is sent, then marked sent or its
failure recorded, in one commit per message that also releases the lease. A sender killed
after the claim leaves a lease that expires; the next run sends the message again with the
same SMTP Message-ID / hub Idempotency-Key, so the receiver can recognise it. Delivery
rate and delay: ``benchmarks/queues.py`` and the README (« Outbound messages »).

Durations (15 days, 2 years…) come from the ``deadlines`` rule file.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, exists, func, or_, select, update
from sqlalchemy.orm import joinedload

from backoffice import clock, links, tasks, workflow
from backoffice.extensions import db
from backoffice.models import (Candidate, Candidature, CandidatureState, Channel, Delegation,
                               DelegationState, Formation, FormationState, MessageStatus,
                               OutboundMessage, PrescriberProfile, RateLimit, Session,
                               SessionState, Token, UserSession)
from backoffice.notifications import keys_known, queue_email, queue_email_to_each
from backoffice.scheduler import Job, JobResult

MAX_ATTEMPTS = 5
LEASE = dt.timedelta(minutes=5)  # a sender's claim on one message (one SMTP or HTTP call)
RETRY_BASE = dt.timedelta(minutes=5)  # 5, 10, 20, 40 minutes…


def deadline(name: str) -> dt.timedelta:
    """A duration of the ``deadlines`` rule set."""
    from backoffice import rules_engine

    return rules_engine.deadline(name)


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n < 2 else many}"  # French: 0 and 1 take the singular


def _id_batches(query, model, batch_size: int, columns=None, ids=None):
    """Yield the ``columns`` (by default ``(id, state)``; the id first) of the due rows of
    ``query`` in id order, one locked batch at a time, as plain rows: no ORM object is
    built (what the jobs read goes in their e-mails, or identifies the rows to change).

    The ids of the due rows are read first, in one query (or given: ``ids``), which the
    database plans as one pass over its index of the due condition; each batch then reads
    its rows by primary key with the due condition again, so a row that is no longer
    due is left out, locked ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (a row another
    runner holds is left to it). A keyset query per batch (``id > last … ORDER BY id
    LIMIT n``) made PostgreSQL walk the primary key, filtering (EXPLAIN ANALYZE of
    avis_non_transmis' batch: 13,789 candidatures read for 500 due), and SQLite sort every
    due row again for each batch."""
    columns = columns or (model.id, model.state)
    if ids is None:
        ids = list(db.session.scalars(query.with_only_columns(model.id).order_by(model.id)))
    for start in range(0, len(ids), batch_size):
        batch_query = (query.with_only_columns(*columns)
                       .where(model.id.in_(ids[start:start + batch_size])).order_by(model.id))
        if db.engine.dialect.name == "postgresql":
            batch_query = batch_query.with_for_update(skip_locked=True, of=model)
        batch = db.session.execute(batch_query).all()
        if batch:
            yield batch
        tasks.pause_after_batch()


def _fire_due(query, model, transition: str, *, batch_size, dry_run, reason,
              load=()) -> tuple[int, int]:
    """Fire ``transition`` (the system's, without guards) on the due rows, set-based per
    batch (``workflow.fire_many``, the objects loaded with ``load`` for the side
    effects); a row that left the source state meanwhile is skipped with a warning."""
    seen = changed = 0
    for batch in _id_batches(query, model, batch_size):
        seen += len(batch)
        fired = set(workflow.fire_many(model, batch, transition, reason=reason, load=load))
        changed += len(fired)
        for ident, _state in batch:
            if ident not in fired:
                current_app.logger.warning("%s %s : n'est plus à un état de départ de « %s »",
                                           model.__name__, ident, transition)
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    return seen, changed


def _working_days_before(at: dt.datetime, days: int) -> dt.datetime:
    """The instant ``days`` working days (Monday–Friday) before ``at``."""
    moment = at
    while days > 0:
        moment -= dt.timedelta(days=1)
        if moment.astimezone(clock.PARIS).weekday() < 5:
            days -= 1
    return moment


# -- catalogue ------------------------------------------------------------------------------
def remind_moderation(*, at, batch_size, dry_run) -> JobResult:
    """Formations waiting for moderation beyond the threshold: one reminder to the
    moderators per formation and per submission."""
    threshold = _working_days_before(at, deadline("rappel_moderation_jours_ouvres").days)
    query = select(Formation).where(
        Formation.state.in_([FormationState.EN_ATTENTE_MODERATION, FormationState.MODIFIEE]),
        Formation.submitted_at <= threshold)
    from backoffice.notifications import _moderators

    seen = queued = 0
    moderators = _moderators()
    columns = (Formation.id, Formation.reference, Formation.intitule, Formation.submitted_at)
    for batch in _id_batches(query, Formation, batch_size, columns=columns):
        with keys_known("formation", [formation.id for formation in batch]):
            for formation in batch:
                seen += 1
                submitted = formation.submitted_at
                queued += queue_email_to_each(
                    {email: f"rappel_moderation:{formation.id}:{submitted.isoformat()}:{email}"
                     for email in moderators}, "rappel_moderation",
                    subject=f"Formation à modérer depuis le {clock.format_local(submitted, '%d/%m/%Y')}",
                    related=("formation", formation.id), reference=formation.reference,
                    intitule=formation.intitule, submitted=clock.format_local(submitted),
                    varying=("subject", "reference", "intitule", "submitted"))
        db.session.rollback() if dry_run else db.session.commit()
    return JobResult(seen, queued, f"{_plural(queued, 'rappel de modération envoyé', 'rappels de modération envoyés')} "
                                   f"pour {_plural(seen, 'formation en attente', 'formations en attente')}")


def archive_ended_formations(*, at, batch_size, dry_run) -> JobResult:
    """Validated formations whose sessions have all ended are archived."""
    today = clock.to_local(at).date()
    live_session = select(Session.id).where(
        Session.formation_id == Formation.id, Session.state == SessionState.ACTIVE,
        Session.date_fin >= today)
    any_session = select(Session.id).where(Session.formation_id == Formation.id)
    query = select(Formation).where(
        Formation.state.in_([FormationState.VALIDEE, FormationState.MODIFIEE]),
        exists(any_session), ~exists(live_session))
    seen, changed = _fire_due(query, Formation, "archiver", batch_size=batch_size,
                              dry_run=dry_run, reason="Toutes les sessions sont terminées")
    return JobResult(seen, changed, f"{_plural(changed, 'formation archivée', 'formations archivées')}")


# -- candidatures ---------------------------------------------------------------------------
# What the side effects of a candidature's transition read (e-mails, hub message).
CANDIDATURE_EFFECTS = (joinedload(Candidature.candidate), joinedload(Candidature.prescriber_user),
                       joinedload(Candidature.prescriber_structure),
                       joinedload(Candidature.session).joinedload(Session.formation))
def expire_drafts(*, at, batch_size, dry_run) -> JobResult:
    limit = at - deadline("expiration_brouillon")
    query = select(Candidature).where(Candidature.state == CandidatureState.BROUILLON,
                                      Candidature.updated_at <= limit)
    seen, changed = _fire_due(query, Candidature, "expirer_brouillon", batch_size=batch_size,
                              dry_run=dry_run, reason="Brouillon non modifié depuis "
                              f"{deadline('expiration_brouillon').days} jours")
    return JobResult(seen, changed, f"{_plural(changed, 'brouillon placé', 'brouillons placés')} à la corbeille")


def remind_level1_validation(*, at, batch_size, dry_run) -> JobResult:
    """Level-1 candidatures close to expiry: the level-3 validators of the structure are
    reminded once."""
    limit = at - deadline("validation_niveau_1") + deadline("rappel_validation_niveau_1")
    query = select(Candidature).where(
        Candidature.state == CandidatureState.EN_ATTENTE_VALIDATION,
        Candidature.submitted_at <= limit)
    from backoffice.notifications import members_by_structure

    seen = queued = 0
    validity = deadline("validation_niveau_1")
    columns = (Candidature.id, Candidature.reference, Candidature.submitted_at,
               Candidature.prescriber_structure_id, Session.reference.label("session_reference"))
    for batch in _id_batches(query.join(Session, Session.id == Candidature.session_id),
                             Candidature, batch_size, columns=columns):
        validators = members_by_structure(  # one query per batch
            {candidature.prescriber_structure_id for candidature in batch},
            prescriber_profiles=(PrescriberProfile.N3,))
        with keys_known("candidature", [candidature.id for candidature in batch]):
            for candidature in batch:
                seen += 1
                expiry = candidature.submitted_at + validity
                queued += queue_email_to_each(
                    {email: f"rappel_validation:{candidature.id}:{email}" for email
                     in validators.get(candidature.prescriber_structure_id, [])},
                    "rappel_validation",
                    subject=(f"Candidature {candidature.reference} à valider avant le "
                             f"{clock.format_local(expiry, '%d/%m/%Y')}"),
                    related=("candidature", candidature.id),
                    reference=candidature.reference,
                    session_reference=candidature.session_reference,
                    expiry=clock.format_local(expiry),
                    varying=("subject", "reference", "session_reference", "expiry"))
        db.session.rollback() if dry_run else db.session.commit()
    return JobResult(seen, queued, f"{_plural(queued, 'rappel de validation envoyé', 'rappels de validation envoyés')}")


def expire_level1_validation(*, at, batch_size, dry_run) -> JobResult:
    limit = at - deadline("validation_niveau_1")
    query = select(Candidature).where(
        Candidature.state == CandidatureState.EN_ATTENTE_VALIDATION,
        Candidature.submitted_at <= limit)
    seen, changed = _fire_due(query, Candidature, "expirer_validation", batch_size=batch_size,
                              dry_run=dry_run, load=CANDIDATURE_EFFECTS,
                              reason="Non validée par un prescripteur de "
                              f"niveau 3 dans les {deadline('validation_niveau_1').days} jours")
    return JobResult(seen, changed, f"{_plural(changed, 'candidature expirée', 'candidatures expirées')} faute de validation")


def mark_avis_not_given(*, at, batch_size, dry_run) -> JobResult:
    """No avis after the session's late-entry date → ``avis_non_transmis``."""
    today = clock.to_local(at).date()
    query = (select(Candidature).join(Session, Session.id == Candidature.session_id)
             .where(Candidature.state == CandidatureState.EN_ATTENTE_AVIS,
                    Session.date_entree_tardive < today))
    seen, changed = _fire_due(query, Candidature, "constater_avis_non_transmis",
                              batch_size=batch_size, dry_run=dry_run, load=CANDIDATURE_EFFECTS,
                              reason="Aucun avis avant la date d'entrée tardive")
    return JobResult(seen, changed, f"{_plural(changed, 'candidature passée', 'candidatures passées')} en « avis non transmis »")


# -- accounts ----------------------------------------------------------------------------------
def end_delegations(*, at, batch_size, dry_run) -> JobResult:
    """Delegations end the day after their end date."""
    today = clock.to_local(at).date()
    query = select(Delegation).where(Delegation.state == DelegationState.ACTIVE,
                                     Delegation.end_date < today)
    seen, changed = _fire_due(query, Delegation, "expirer", batch_size=batch_size,
                              dry_run=dry_run, reason="Date de fin atteinte",
                              load=(joinedload(Delegation.granted_by),))
    return JobResult(seen, changed, f"{_plural(changed, 'délégation terminée', 'délégations terminées')}")


def purge_expired_tokens(*, at, batch_size, dry_run) -> JobResult:
    """Expired or used single-use links are deleted (they can no longer serve)."""
    condition = or_(Token.expires_at <= at, Token.used_at.is_not(None))
    count = db.session.scalar(select(func.count()).select_from(Token).where(condition))
    if not dry_run:
        db.session.execute(delete(Token).where(condition))
        db.session.commit()
    return JobResult(count, count, f"{_plural(count, 'lien expiré ou utilisé supprimé', 'liens expirés ou utilisés supprimés')}")


def purge_rate_limits(*, at, batch_size, dry_run) -> JobResult:
    """Counters of logins and e-mails whose window ended long ago are deleted (a new
    attempt would start a new window anyway)."""
    from backoffice import rate_limits

    condition = RateLimit.window_start < at - rate_limits.PURGE_AFTER
    count = db.session.scalar(select(func.count()).select_from(RateLimit).where(condition))
    if not dry_run:
        rate_limits.purge(at=at)
        db.session.commit()
    return JobResult(count, count, f"{_plural(count, 'compteur de tentatives supprimé', 'compteurs de tentatives supprimés')}")


def purge_sessions(*, at, batch_size, dry_run) -> JobResult:
    """Login sessions older than ``sessions.HISTORY`` are deleted: none can still be used
    (``SESSION_MAX_HOURS``), and the « Sessions de connexion » history stops there."""
    from backoffice.services import sessions

    condition = UserSession.created_at < at - sessions.HISTORY
    count = db.session.scalar(select(func.count()).select_from(UserSession).where(condition))
    if not dry_run:
        db.session.execute(delete(UserSession).where(condition))
        db.session.commit()
    return JobResult(count, count, f"{_plural(count, 'session ancienne supprimée', 'sessions anciennes supprimées')}")


# -- retention (RGPD) ---------------------------------------------------------------------------
def _last_activity():
    """A candidate's last activity: the last change of one of their candidatures, else
    their own last activity, else their last change (for one candidate: an index probe)."""
    latest = (select(func.max(Candidature.updated_at))
              .where(Candidature.candidate_id == Candidate.id).scalar_subquery())
    return func.coalesce(latest, Candidate.last_activity_at, Candidate.updated_at)


def _inactive_since(limit) -> list:
    """``(id, last activity, has an e-mail)`` of every candidate not anonymised whose last
    activity is at ``limit`` or before, in id order: one pass over the candidatures
    (grouped by candidate) instead of ``_last_activity`` once or twice per candidate and
    per query."""
    latest = (select(Candidature.candidate_id, func.max(Candidature.updated_at).label("latest"))
              .group_by(Candidature.candidate_id).subquery())
    last = func.coalesce(latest.c.latest, Candidate.last_activity_at, Candidate.updated_at)
    return db.session.execute(
        select(Candidate.id, last, Candidate.email.is_not(None))
        .outerjoin(latest, latest.c.candidate_id == Candidate.id)
        .where(Candidate.anonymised_at.is_(None), last <= limit).order_by(Candidate.id)).all()


def purge_personal_data(*, at, batch_size, dry_run) -> JobResult:
    """Candidates without activity for the retention period are anonymised; a notice is
    e-mailed first (when an address is known) ``preavis_purge`` before. The candidates
    concerned are found in one pass (``_inactive_since``); each batch reads its own again
    by primary key with the full condition (``_id_batches``)."""
    retention, notice = deadline("conservation_donnees"), deadline("preavis_purge")
    base = select(Candidate).where(Candidate.anonymised_at.is_(None))
    found = _inactive_since(at - retention + notice)
    noticed = 0
    columns = (Candidate.id, Candidate.email, Candidate.prenom, Candidate.updated_at)
    for batch in _id_batches(base.where(_last_activity() <= at - retention + notice,
                                        _last_activity() > at - retention,
                                        Candidate.email.is_not(None)), Candidate, batch_size,
                             columns=columns, ids=[ident for ident, last, email in found
                                                   if email and last > at - retention]):
        with keys_known("candidate", [candidate.id for candidate in batch]):
            for candidate in batch:
                if queue_email(candidate.email, "preavis_purge", subject=(
                        "Vos données seront bientôt supprimées"),
                        related=("candidate", candidate.id),
                        idempotency_key=f"preavis_purge:{candidate.id}:{candidate.updated_at.date()}",
                        prenom=candidate.prenom, varying=("prenom",)):
                    noticed += 1
        db.session.rollback() if dry_run else db.session.commit()
    seen = 0
    due = base.where(_last_activity() <= at - retention)
    for batch in _id_batches(due, Candidate, batch_size,
                             columns=(Candidate.id, Candidate.date_naissance),
                             ids=[ident for ident, last, _ in found if last <= at - retention]):
        seen += len(batch)
        anonymise(batch, at)
        db.session.rollback() if dry_run else db.session.commit()
    return JobResult(seen, seen, f"{_plural(seen, 'candidat anonymisé', 'candidats anonymisés')}, "
                                 f"{_plural(noticed, 'préavis envoyé', 'préavis envoyés')}")


def anonymise(rows, at: dt.datetime) -> None:
    """Anonymise the candidates ``rows`` (their ``(id, date_naissance)``) and the free
    texts of their candidatures, set-based: one UPDATE of the candidates (by primary key,
    executemany) and one of their candidatures."""
    from backoffice.text import name_key

    cleared = dict.fromkeys(("civilite", "email", "telephone", "identifiant_france_travail",
                             "identifiant_regional", "nir_chiffre", "commune_id"))
    now = clock.now()
    db.session.execute(update(Candidate), [
        {"id": ident, "nom": "ANONYME", "nom_normalise": name_key("ANONYME"),
         "prenom": f"Candidat {ident}", "prenom_normalise": name_key(f"Candidat {ident}"),
         "date_naissance": birth.replace(month=1, day=1), **cleared, "extra": {},
         "anonymised_at": at, "updated_at": now} for ident, birth in rows])
    db.session.execute(update(Candidature)
                       .where(Candidature.candidate_id.in_([ident for ident, _ in rows]))
                       .values(parcours_anterieur=None, raisons_choix=None, suites_parcours=None,
                               extra={}).execution_options(synchronize_session=False))


# -- outbound queue ------------------------------------------------------------------------------
def _due_messages(channel: str, at):
    return select(OutboundMessage).where(OutboundMessage.channel == channel,
                                         OutboundMessage.status == MessageStatus.EN_ATTENTE,
                                         OutboundMessage.next_attempt_at <= at)


def _unclaimed(now):
    return or_(OutboundMessage.claimed_until.is_(None), OutboundMessage.claimed_until < now)


def _claimed_messages(channel: str, at, batch_size: int):
    """Yield ``(batch_number, message)`` for each due message of ``channel`` that this
    sender has claimed: the lease (a token of its own, ``claimed_until`` = now + LEASE) is
    set by one conditional UPDATE and committed *before* the message is yielded, so only
    one sender at a time can get it. Messages another sender holds are skipped; the caller
    sends, then records the outcome and clears the lease (``_release``) and commits."""
    token = secrets.token_hex(16)
    last_id, number = 0, 0
    while True:
        ids = list(db.session.scalars(
            select(OutboundMessage.id)
            .where(OutboundMessage.channel == channel,
                   OutboundMessage.status == MessageStatus.EN_ATTENTE,
                   OutboundMessage.next_attempt_at <= at, OutboundMessage.id > last_id,
                   _unclaimed(clock.lease_now()))
            .order_by(OutboundMessage.id).limit(batch_size)))
        db.session.commit()
        if not ids:
            return
        number += 1
        for message_id in ids:
            now = clock.lease_now()
            claimed = db.session.execute(
                update(OutboundMessage)
                .where(OutboundMessage.id == message_id,
                       OutboundMessage.status == MessageStatus.EN_ATTENTE,
                       OutboundMessage.next_attempt_at <= at, _unclaimed(now))
                .values(claim_token=token, claimed_until=now + LEASE)
                .execution_options(synchronize_session=False)).rowcount == 1
            db.session.commit()
            if claimed:
                message = db.session.get(OutboundMessage, message_id, populate_existing=True)
                if message.claim_token == token:
                    yield number, message
        last_id = ids[-1]


def _release(message: OutboundMessage) -> None:
    message.claim_token = message.claimed_until = None


def _record_sent(message: OutboundMessage, at) -> None:
    message.status, message.sent_at = MessageStatus.ENVOYE, at
    message.attempts += 1
    message.sealed_links = None
    _release(message)


def _record_failure(message: OutboundMessage, error: Exception, at, *,
                    final: bool = False) -> None:
    message.attempts += 1
    message.last_error = f"{type(error).__name__}: {error}"[:2000]
    if final or message.attempts >= MAX_ATTEMPTS:
        message.status = MessageStatus.ECHEC
        message.sealed_links = None  # a secret is kept no longer than it can serve
    else:
        message.next_attempt_at = at + RETRY_BASE * 2 ** (message.attempts - 1)
    _release(message)


def _pending(channel: str, at) -> int:
    return db.session.scalar(select(func.count()).select_from(
        _due_messages(channel, at).subquery()))


def send_emails(*, at, batch_size, dry_run) -> JobResult:
    """Send queued e-mails through SMTP, exactly once each whatever runs at the same time
    (each message is claimed before it is sent, see ``_claimed_messages``); retry with
    backoff, fail after MAX_ATTEMPTS. Without SMTP settings, messages stay queued
    (readable in admin). The sealed single-use links are put back only into the e-mail
    handed to SMTP, and erased from the row once it is sent or has failed for good."""
    config = current_app.config
    pending = _pending(Channel.EMAIL, at)
    if not config["SMTP_HOST"]:
        return JobResult(pending, 0, f"Aucun serveur SMTP configuré : "
                                     f"{_plural(pending, 'courriel reste', 'courriels restent')} en attente")
    if dry_run:
        return JobResult(pending, 0, f"{_plural(pending, 'courriel serait envoyé', 'courriels seraient envoyés')}")
    sent = failed = seen = 0
    smtp, smtp_batch, smtp_error = None, None, None
    try:
        for batch, message in _claimed_messages(Channel.EMAIL, at, batch_size):
            seen += 1
            if batch != smtp_batch:  # one SMTP connection per batch
                if smtp is not None:
                    _quit(smtp)
                smtp, smtp_batch, smtp_error = None, batch, None
                try:
                    smtp = _smtp_connection(config)
                except (OSError, smtplib.SMTPException) as error:
                    smtp_error = error
            try:
                if smtp_error is not None:
                    raise smtp_error
                smtp.send_message(_email(message, config["MAIL_FROM"]))
            except links.UnreadableLinks as error:
                _record_failure(message, error, at, final=True)
                failed += 1
            except (OSError, smtplib.SMTPException) as error:
                _record_failure(message, error, at)
                failed += 1
            else:
                _record_sent(message, at)
                sent += 1
            db.session.commit()
    finally:
        if smtp is not None:
            _quit(smtp)
    return JobResult(seen, sent, f"{_plural(sent, 'courriel envoyé', 'courriels envoyés')}, "
                                 f"{_plural(failed, 'échec', 'échecs')}")


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def _smtp_connection(config) -> smtplib.SMTP:
    if config["SMTP_SSL"]:
        smtp = smtplib.SMTP_SSL(config["SMTP_HOST"], config["SMTP_PORT"], timeout=30,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=30)
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
    if config["SMTP_USER"]:
        smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
    return smtp


def message_id_header(message: OutboundMessage) -> str:
    """The SMTP Message-ID of ``message``: derived from its id and the host of
    ``PUBLIC_BASE_URL``, the same at every attempt, so that a message sent again after a
    sender was killed between SMTP's answer and the commit is recognised as the same."""
    host = urlsplit(current_app.config["PUBLIC_BASE_URL"]).hostname or "backoffice"
    return f"<outbound-{message.id}@{host}>"


def hub_idempotency_key(message: OutboundMessage) -> str:
    """The Idempotency-Key header sent to the hub: the key the message was queued with,
    the same at every attempt (by default derived from its id)."""
    return message.idempotency_key or f"outbound-{message.id}"


def _email(message: OutboundMessage, sender: str) -> EmailMessage:
    """The e-mail handed to SMTP, with its sealed links put back (``UnreadableLinks``
    when they cannot be)."""
    body_text, body_html = links.unseal(message.sealed_links, message.body_text,
                                        message.body_html)
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = sender, message.recipient, message.subject
    email["Message-ID"] = message_id_header(message)
    email.set_content(body_text or "")
    if body_html:
        email.add_alternative(body_html, subtype="html")
    return email


def deliver_hub_messages(*, at, batch_size, dry_run) -> JobResult:
    """POST queued hub messages (JSON) to ``HUB_ENDPOINT_URL``, exactly once each whatever
    runs at the same time (claimed first, as e-mails); retry with backoff."""
    url = current_app.config["HUB_ENDPOINT_URL"]
    pending = _pending(Channel.HUB, at)
    if not url:
        return JobResult(pending, 0, f"Aucun hub configuré : "
                                     f"{_plural(pending, 'message reste', 'messages restent')} en attente")
    if dry_run:
        return JobResult(pending, 0, f"{_plural(pending, 'message serait envoyé', 'messages seraient envoyés')} au hub")
    sent = seen = 0
    for _batch, message in _claimed_messages(Channel.HUB, at, batch_size):
        seen += 1
        key = hub_idempotency_key(message)
        body = json.dumps({"id": key, **(message.payload or {})}).encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": key})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                response.read()
        except (urllib.error.URLError, OSError) as error:
            _record_failure(message, error, at)
        else:
            _record_sent(message, at)
            sent += 1
        db.session.commit()
    return JobResult(seen, sent, f"{_plural(sent, 'message envoyé', 'messages envoyés')} au hub")


SCHEDULE = [
    Job("envoi_courriels", "Envoi des courriels", send_emails,
        {"minute": "*"}, "toutes les minutes"),
    Job("envoi_hub", "Envoi des messages au hub régional", deliver_hub_messages,
        {"minute": "*/5"}, "toutes les 5 minutes"),
    Job("rappel_moderation", "Rappels de modération", remind_moderation,
        {"day_of_week": "mon-fri", "hour": 8, "minute": 0}, "du lundi au vendredi à 8 h"),
    Job("expiration_brouillons", "Brouillons de candidature à la corbeille", expire_drafts,
        {"hour": 2, "minute": 0}, "chaque nuit à 2 h"),
    Job("rappel_validation_niveau_1", "Rappels de validation (niveau 1)",
        remind_level1_validation, {"hour": 7, "minute": 0}, "chaque jour à 7 h"),
    Job("expiration_validation_niveau_1", "Expiration des candidatures de niveau 1",
        expire_level1_validation, {"hour": 2, "minute": 15}, "chaque nuit à 2 h 15"),
    Job("avis_non_transmis", "Avis non transmis après la date d'entrée tardive",
        mark_avis_not_given, {"hour": 2, "minute": 30}, "chaque nuit à 2 h 30"),
    Job("archivage_formations", "Archivage des formations terminées",
        archive_ended_formations, {"hour": 3, "minute": 0}, "chaque nuit à 3 h"),
    Job("fin_delegations", "Fin des délégations à leur date de fin", end_delegations,
        {"hour": 0, "minute": 5}, "chaque jour à 0 h 05"),
    Job("expiration_liens", "Suppression des liens expirés", purge_expired_tokens,
        {"minute": 17}, "toutes les heures"),
    Job("purge_compteurs", "Suppression des compteurs de tentatives échus", purge_rate_limits,
        {"hour": 4, "minute": 30}, "chaque nuit à 4 h 30"),
    Job("purge_sessions", "Suppression des sessions de connexion anciennes", purge_sessions,
        {"hour": 4, "minute": 40}, "chaque nuit à 4 h 40"),
    Job("purge_rgpd", "Anonymisation des données anciennes (RGPD)", purge_personal_data,
        {"hour": 4, "minute": 0}, "chaque nuit à 4 h"),
]

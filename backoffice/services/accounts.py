"""Accounts: registration, activation, forgotten password, e-mail change, account and
affiliation requests decided by référents (or moderators), rights, detaching users,
habilitations and delegations of the "Mon Activité Formation" démarche, login throttling
and the limits on the e-mails of the public forms.

Every password set here (registration, reset, change) passes ``passwords.
check_password_policy`` with the account's e-mail and names. Login attempts are counted
(``rate_limits``) per account and per client address *before* the password is checked;
registration and forgotten password count their e-mails per recipient and per address and
queue nothing beyond the limit, answering the same. Unknown and known accounts cost the
same: one password hash check on login (a dummy hash when there is no account), one hash
on registration (even when the address is taken).

Services take keyword arguments, change state only through ``workflow.fire`` and raise
``AccountError`` (French message); the caller commits.
"""
from __future__ import annotations

import datetime as dt
import re

from flask import current_app
from sqlalchemy import or_, select

from backoffice import clock, passwords, rate_limits, siret as siret_helpers, workflow
from backoffice.extensions import db
from backoffice.links import public_url, secret_url
from backoffice.models import (AccountRequest, AffiliationRequest, Delegation, DelegationState,
                               Habilitation, HabilitationRole, HabilitationState,
                               Membership, OfProfile, ParcoursProProfile, PrescriberProfile,
                               ReferencingRequest, RequestState, SessionEndReason, Structure,
                               Token, TokenPurpose, User, UserSession, UserState)
from backoffice.notifications import queue_email
from backoffice.services import DomainError

ACTIVATION_LIFETIME = dt.timedelta(hours=48)
RESET_LIFETIME = dt.timedelta(hours=1)
EMAIL_CHANGE_LIFETIME = dt.timedelta(hours=48)
DELEGATION_LIFETIME = dt.timedelta(days=7)
HABILITATION_CODE_LIFETIME = dt.timedelta(days=30)

INVALID_LINK = ("Ce lien n'est pas valide, a déjà été utilisé ou a expiré. "
                "Recommencez la démarche pour en recevoir un nouveau.")


class AccountError(DomainError):
    """A refused accounts operation."""


# -- tokens ---------------------------------------------------------------------------------
def find_token(secret: str, purpose: str) -> Token | None:
    """The usable token of ``purpose`` whose secret is ``secret`` (None otherwise)."""
    token = db.session.scalar(select(Token).where(Token.token_hash == Token.hash(secret or ""),
                                                  Token.purpose == purpose))
    return token if token is not None and token.is_usable else None


def use_token(secret: str, purpose: str) -> Token:
    token = find_token(secret, purpose)
    if token is None:
        raise AccountError(INVALID_LINK)
    token.used_at = clock.now()
    return token


def _discard_tokens(user: User, purpose: str) -> None:
    for token in db.session.scalars(select(Token).where(
            Token.user_id == user.id, Token.purpose == purpose, Token.used_at.is_(None))):
        token.used_at = clock.now()


# -- structures -----------------------------------------------------------------------------
def search_structures(query: str, limit: int = 20) -> list[Structure]:
    """Active structures whose raison sociale, sigle or SIRET matches ``query``."""
    query = (query or "").strip()
    if len(query) < 2:
        return []
    digits = re.sub(r"\s", "", query)
    if digits.isdigit():
        condition = Structure.siret.startswith(digits)
    else:
        pattern = f"%{query.lower()}%"
        condition = or_(db.func.lower(Structure.raison_sociale).like(pattern),
                        db.func.lower(Structure.sigle).like(pattern))
    return list(db.session.scalars(select(Structure).where(Structure.active.is_(True), condition)
                                   .order_by(Structure.raison_sociale).limit(limit)))


def check_siret(value: str | None) -> str:
    value = re.sub(r"\s", "", value or "")
    if not re.fullmatch(r"\d{14}", value):
        raise AccountError("Le SIRET compte 14 chiffres.")
    if not siret_helpers.is_valid(value):
        raise AccountError("Ce numéro SIRET n'est pas valide (clé de contrôle incorrecte).")
    return value


def has_referent(structure_id: int) -> bool:
    return db.session.scalar(select(Membership.id).where(
        Membership.structure_id == structure_id, Membership.is_referent.is_(True)).limit(1)) \
        is not None


# -- registration and activation ------------------------------------------------------------
def email_taken(email: str) -> bool:
    return db.session.scalar(select(User.id).where(User.email == email.lower())) is not None


def register(*, email: str, password: str, nom: str, prenom: str, fonction: str | None,
             telephone: str | None, structure: Structure | None = None,
             referencing: dict | None = None, address: str | None = None) -> User | None:
    """A new account ``a_activer`` with its request (account request, or referencing request
    when the structure is not listed) and the activation e-mail. When the address already
    has an account, its owner is told by e-mail and nothing is created (the page answers
    the same). Beyond the e-mail limits (``allow_public_email``, ``address`` being the
    client's), nothing is created nor sent, and the page answers the same too."""
    email = email.strip().lower()
    check_password(password, email, nom, prenom)
    password_hash = passwords.hash_password(password)  # also when the address is taken
    if not allow_public_email(email=email, address=address):
        return None
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing is not None:
        queue_email(email, "compte_existant", subject="Demande de création de compte",
                    related=existing, login_url=public_url("auth.login"),
                    reset_url=public_url("accounts.forgotten_password"))
        return None
    user = User(email=email, nom=nom, prenom=prenom, fonction=fonction, telephone=telephone,
                state=UserState.A_ACTIVER, password_hash=password_hash)
    db.session.add(user)
    db.session.flush()
    if structure is not None:
        db.session.add(AccountRequest(user=user, structure=structure))
    else:
        db.session.add(ReferencingRequest(requester=user, **(referencing or {})))
    send_activation(user)
    db.session.flush()
    return user


def send_activation(user: User) -> None:
    _discard_tokens(user, TokenPurpose.ACTIVATION)
    token, secret = Token.issue(purpose=TokenPurpose.ACTIVATION, lifetime=ACTIVATION_LIFETIME,
                                user=user)
    db.session.add(token)
    queue_email(user.email, "activation", subject="Activez votre compte", related=user,
                user=user, links={"url": secret_url("accounts.activate", secret=secret)},
                expires=clock.format_local(token.expires_at))


def activate(secret: str) -> User:
    """The activation link: the account waits for validation (« Compte en cours de
    validation »)."""
    token = use_token(secret, TokenPurpose.ACTIVATION)
    user = token.user
    if user is None or user.state != UserState.A_ACTIVER:
        raise AccountError(INVALID_LINK)
    workflow.fire(user, "activer", actor=user)
    return user


# -- forgotten password and password change -------------------------------------------------
def request_password_reset(email: str, *, address: str | None = None) -> None:
    """Sends a reset link when the address has a usable account; silent otherwise, and
    beyond the e-mail limits (``allow_public_email``)."""
    email = (email or "").strip().lower()
    if not allow_public_email(email=email, address=address):
        return
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None or user.state in (UserState.REFUSE, UserState.DESACTIVE):
        return
    _discard_tokens(user, TokenPurpose.REINITIALISATION)
    token, secret = Token.issue(purpose=TokenPurpose.REINITIALISATION, lifetime=RESET_LIFETIME,
                                user=user)
    db.session.add(token)
    queue_email(user.email, "reinitialisation", subject="Réinitialisation de votre mot de passe",
                related=user, user=user,
                links={"url": secret_url("accounts.reset_password", secret=secret)},
                expires=clock.format_local(token.expires_at))


def reset_password(secret: str, password: str) -> User:
    token = use_token(secret, TokenPurpose.REINITIALISATION)
    user = token.user
    set_password(user, password)
    return user


def check_password(password: str, *user_inputs: str | None) -> None:
    """The password policy (``passwords.check_password_policy``) as an ``AccountError``;
    ``user_inputs``: the account's e-mail, nom, prénom."""
    message = passwords.check_password_policy(password, user_inputs=user_inputs)
    if message:
        raise AccountError(message)


def set_password(user: User, password: str, *, keep_session: UserSession | None = None
                 ) -> None:
    """New password, within the policy; every session of the user ends at once, but
    ``keep_session`` (the one where the user changed it from « Mon compte »)."""
    from backoffice.services import sessions

    check_password(password, user.email, user.nom, user.prenom)
    user.set_password(password)
    sessions.end_all(user, SessionEndReason.MOT_DE_PASSE, keep=keep_session)
    _discard_tokens(user, TokenPurpose.REINITIALISATION)


# -- e-mail change --------------------------------------------------------------------------
def request_email_change(user: User, new_email: str) -> None:
    new_email = new_email.strip().lower()
    if new_email == user.email:
        raise AccountError("C'est déjà votre adresse électronique.")
    if email_taken(new_email):
        raise AccountError("Cette adresse électronique ne peut pas être utilisée.")
    _discard_tokens(user, TokenPurpose.CHANGEMENT_EMAIL)
    token, secret = Token.issue(purpose=TokenPurpose.CHANGEMENT_EMAIL,
                                lifetime=EMAIL_CHANGE_LIFETIME, user=user,
                                payload={"email": new_email})
    db.session.add(token)
    queue_email(new_email, "changement_email", subject="Confirmez votre nouvelle adresse",
                related=user, user=user, new_email=new_email,
                links={"url": secret_url("accounts.confirm_email", secret=secret)},
                expires=clock.format_local(token.expires_at))


def confirm_email(secret: str) -> User:
    token = use_token(secret, TokenPurpose.CHANGEMENT_EMAIL)
    new_email = token.payload.get("email", "")
    if email_taken(new_email):
        raise AccountError("Cette adresse électronique ne peut pas être utilisée.")
    token.user.email = new_email
    return token.user


# -- account and affiliation requests -------------------------------------------------------
FAMILIES = ("profile_of", "profile_prescripteur", "profile_parcourspro")


def allowed_profiles(structure: Structure) -> dict[str, list[tuple[str, str]]]:
    """For each family, the (code, label) a référent may choose in ``structure``."""
    choices = {"profile_of": [], "profile_prescripteur": [],
               "profile_parcourspro": [(ParcoursProProfile.EMPLOYEUR.value,
                                        ParcoursProProfile.EMPLOYEUR.label)]}
    if structure.is_of:
        choices["profile_of"] = [(p.value, p.label) for p in OfProfile]
        choices["profile_parcourspro"].append((ParcoursProProfile.PRESTATAIRE.value,
                                               ParcoursProProfile.PRESTATAIRE.label))
    if structure.is_prescripteur:
        choices["profile_prescripteur"] = [(p.value, p.label) for p in PrescriberProfile]
    return choices


def set_profiles(membership: Membership, profiles: dict) -> None:
    allowed = allowed_profiles(membership.structure)
    for family in FAMILIES:
        value = (profiles or {}).get(family) or None
        if value is not None and value not in {code for code, _ in allowed[family]}:
            raise AccountError("Ce profil n'existe pas pour cette structure.")
        setattr(membership, family, value)


def _attach(user: User, structure: Structure, profiles: dict | None) -> Membership:
    membership = db.session.scalar(select(Membership).where(
        Membership.user_id == user.id, Membership.structure_id == structure.id))
    if membership is None:
        membership = Membership(user=user, structure=structure, beneficiaire=True,
                                is_referent=not has_referent(structure.id))
        db.session.add(membership)
    set_profiles(membership, profiles or {})
    db.session.flush()
    return membership


def decide_request(request_obj, *, actor: User, accept: bool, reason: str | None = None,
                   profiles: dict | None = None) -> None:
    """Valider or refuser an account or affiliation request. The first account of a
    structure (no référent yet) is decided by staff and becomes its référent."""
    user = request_obj.user
    if not accept:
        # The user first: the référent's right on them comes from the pending request.
        if isinstance(request_obj, AccountRequest) and \
                user.state == UserState.EN_ATTENTE_VALIDATION and not user.memberships:
            workflow.fire(user, "refuser", actor=actor, reason=reason)
        workflow.fire(request_obj, "refuser", actor=actor, reason=reason)
        request_obj.decided_by = actor
        request_obj.decision_comment = reason
        return
    if isinstance(request_obj, AccountRequest) and user.state != UserState.EN_ATTENTE_VALIDATION:
        raise AccountError("Ce compte n'a pas encore été activé par son titulaire.")
    if not workflow.may_fire(request_obj, workflow.workflow_for(request_obj)
                             .transitions["valider"], actor):
        raise workflow.PermissionDenied("Vous n'avez pas le droit de valider cette demande.")
    workflow.fire(request_obj, "valider", actor=actor, reason=reason)
    request_obj.decided_by = actor
    _attach(user, request_obj.structure, profiles)
    if user.state == UserState.EN_ATTENTE_VALIDATION:
        workflow.fire(user, "valider", actor=actor, reason=reason)


def request_affiliation(user: User, structure: Structure, message: str | None = None
                        ) -> AffiliationRequest:
    if db.session.scalar(select(Membership.id).where(Membership.user_id == user.id,
                                                     Membership.structure_id == structure.id)):
        raise AccountError("Vous êtes déjà rattaché à cette structure.")
    if db.session.scalar(select(AffiliationRequest.id).where(
            AffiliationRequest.user_id == user.id, AffiliationRequest.structure_id == structure.id,
            AffiliationRequest.state == RequestState.EN_ATTENTE)):
        raise AccountError("Une demande de rattachement à cette structure est déjà en attente.")
    request_obj = AffiliationRequest(user=user, structure=structure, message=message)
    db.session.add(request_obj)
    db.session.flush()
    return request_obj


def pending_requests(structure_id: int) -> tuple[list[AccountRequest], list[AffiliationRequest]]:
    accounts = list(db.session.scalars(
        select(AccountRequest).join(User, User.id == AccountRequest.user_id)
        .where(AccountRequest.structure_id == structure_id,
               AccountRequest.state == RequestState.EN_ATTENTE,
               User.state == UserState.EN_ATTENTE_VALIDATION)
        .order_by(AccountRequest.created_at)))
    affiliations = list(db.session.scalars(
        select(AffiliationRequest).where(AffiliationRequest.structure_id == structure_id,
                                         AffiliationRequest.state == RequestState.EN_ATTENTE)
        .order_by(AffiliationRequest.created_at)))
    return accounts, affiliations


# -- referencing requests (« Ma structure n'est pas dans la liste ») --------------------------
def pending_referencing_requests() -> list[ReferencingRequest]:
    return list(db.session.scalars(select(ReferencingRequest).where(
        ReferencingRequest.state == RequestState.EN_ATTENTE)
        .order_by(ReferencingRequest.created_at, ReferencingRequest.id)))


def _departement(code_postal: str | None) -> str | None:
    if not code_postal or not re.fullmatch(r"\d{5}", code_postal):
        return None
    if code_postal.startswith("97"):
        return code_postal[:3]
    if code_postal.startswith("20"):  # Corse: 2A / 2B
        return "2A" if code_postal < "20200" else "2B"
    return code_postal[:2]


def _commune_for(nom: str | None, code_postal: str | None):
    from backoffice.models import Commune

    if not nom or not code_postal:
        return None
    for commune in db.session.scalars(select(Commune).where(Commune.code_postal == code_postal)):
        if commune.nom.strip().lower() == nom.strip().lower():
            return commune
    return None


def decide_referencing(request_obj: ReferencingRequest, *, actor: User, accept: bool,
                       reason: str | None = None) -> Structure | None:
    """Valider (the structure is created from the request and the requester's account
    request is attached to it) or refuser a referencing request. Moderators and admins
    only (the workflow checks it). The SIRET must not belong to an existing structure."""
    if not accept:
        workflow.fire(request_obj, "refuser", actor=actor, reason=reason)
        request_obj.decided_by = actor
        request_obj.decision_comment = (reason or "").strip() or None
        requester = request_obj.requester
        if requester is not None and requester.state == UserState.EN_ATTENTE_VALIDATION \
                and not requester.memberships and db.session.scalar(
                    select(AccountRequest.id).where(
                        AccountRequest.user_id == requester.id,
                        AccountRequest.state == RequestState.EN_ATTENTE).limit(1)) is None:
            # Without a structure the account has no use: it is refused with the request.
            workflow.fire(requester, "refuser", actor=actor, reason=reason)
        return None
    siret = check_siret(request_obj.siret)
    existing = db.session.scalar(select(Structure).where(Structure.siret == siret))
    if existing is not None:
        raise AccountError(f"Une structure avec le SIRET {siret} existe déjà "
                           f"({existing.raison_sociale}) : refusez la demande et invitez le "
                           "demandeur à choisir cette structure dans la liste.")
    workflow.fire(request_obj, "valider", actor=actor, reason=reason)
    commune = _commune_for(request_obj.commune_nom, request_obj.code_postal)
    structure = Structure(raison_sociale=request_obj.raison_sociale, sigle=request_obj.sigle,
                          siret=siret, siren=siret[:9], kind=request_obj.kind,
                          prescriber_type=request_obj.prescriber_type,
                          adresse=request_obj.adresse, code_postal=request_obj.code_postal,
                          commune=commune,
                          departement=commune.departement if commune is not None
                          else _departement(request_obj.code_postal), active=True)
    db.session.add(structure)
    db.session.flush()
    request_obj.structure = structure
    request_obj.decided_by = actor
    request_obj.decision_comment = (reason or "").strip() or None
    requester = request_obj.requester
    if requester is not None and requester.state in (UserState.A_ACTIVER,
                                                      UserState.EN_ATTENTE_VALIDATION):
        # First account of the new structure: decided on the moderators' first-accounts page.
        db.session.add(AccountRequest(user=requester, structure=structure))
    db.session.flush()
    return structure


# -- référent: rights and detaching ----------------------------------------------------------
def structure_members(structure_id: int) -> list[Membership]:
    return list(db.session.scalars(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.structure_id == structure_id).order_by(User.nom, User.prenom)))


def _referent_count(structure_id: int) -> int:
    return len(list(db.session.scalars(select(Membership.id).where(
        Membership.structure_id == structure_id, Membership.is_referent.is_(True)))))


def update_rights(membership: Membership, *, actor: User, profiles: dict,
                  is_referent: bool) -> None:
    if membership.is_referent and not is_referent \
            and _referent_count(membership.structure_id) <= 1:
        raise AccountError("La structure doit garder au moins un référent : désignez-en un "
                           "autre avant de retirer ce droit.")
    set_profiles(membership, profiles)
    membership.is_referent = is_referent


def detach(membership: Membership, *, actor: User) -> None:
    if membership.user_id == actor.id:
        raise AccountError("Vous ne pouvez pas vous détacher vous-même de la structure.")
    if membership.is_referent and _referent_count(membership.structure_id) <= 1:
        raise AccountError("Le dernier référent ne peut pas quitter la structure.")
    db.session.delete(membership)


# -- login throttling and e-mail limits ----------------------------------------------------------
def _minutes(setting: str) -> dt.timedelta:
    return dt.timedelta(minutes=current_app.config[setting])


def login_limits() -> tuple[rate_limits.Limit, rate_limits.Limit]:
    """(per account, per client address), from the settings."""
    window = _minutes("LOGIN_WINDOW_MINUTES")
    return (rate_limits.Limit("connexion_compte",
                              current_app.config["LOGIN_ATTEMPTS_PER_ACCOUNT"], window),
            rate_limits.Limit("connexion_adresse",
                              current_app.config["LOGIN_ATTEMPTS_PER_ADDRESS"], window))


def count_login_attempt(email: str, address: str | None) -> dt.timedelta | None:
    """Counts one login attempt on the account ``email`` and from ``address``, before the
    password is checked; how long to wait when beyond a limit (None: check the password).
    The caller commits at once, so that parallel attempts see each other's counts."""
    per_account, per_address = login_limits()
    waits = [rate_limits.hit(per_account, email)]
    if address:
        waits.append(rate_limits.hit(per_address, address))
    waits = [wait for wait in waits if wait is not None]
    return max(waits) if waits else None


def authenticate(email: str, password: str) -> User | None:
    """The account whose e-mail and password these are (None otherwise); one password
    hash check whether the account exists or not."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        passwords.verify_password(None, password)  # the same work as a wrong password
        return None
    return user if user.check_password(password) else None


def record_login_success(email: str) -> None:
    """The account's counter starts again (the address keeps its count)."""
    rate_limits.reset(login_limits()[0], email)


def allow_public_email(*, email: str, address: str | None) -> bool:
    """Counts one e-mail asked from a public form (registration, forgotten password) for
    the recipient ``email`` and from the client ``address``; False beyond either limit:
    the caller then sends nothing and answers the same page."""
    window = _minutes("PUBLIC_EMAILS_WINDOW_MINUTES")
    allowed = rate_limits.hit(rate_limits.Limit(
        "courriel_destinataire", current_app.config["PUBLIC_EMAILS_PER_RECIPIENT"], window),
        email) is None
    if address:
        allowed = rate_limits.hit(rate_limits.Limit(
            "courriel_adresse", current_app.config["PUBLIC_EMAILS_PER_ADDRESS"], window),
            address) is None and allowed
    return allowed


def format_wait(wait: dt.timedelta) -> str:
    seconds = max(1, int(wait.total_seconds() + 0.999))
    if seconds < 60:
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"
    minutes = (seconds + 59) // 60
    return f"{minutes} minute{'s' if minutes > 1 else ''}"


# -- habilitations and delegations -------------------------------------------------------------
def issue_habilitation_code(siret: str) -> str:
    """A single-use activation code for becoming gestionnaire of ``siret`` (shown once)."""
    siret = check_siret(siret)
    token, secret = Token.issue(purpose=TokenPurpose.CODE_HABILITATION,
                                lifetime=HABILITATION_CODE_LIFETIME, payload={"siret": siret})
    db.session.add(token)
    return secret


def _habilitation(user: User, siret: str) -> Habilitation | None:
    return db.session.scalar(select(Habilitation).where(Habilitation.user_id == user.id,
                                                        Habilitation.siret == siret))


def activate_with_code(user: User, siret: str, code: str) -> Habilitation:
    siret = check_siret(siret)
    token = find_token((code or "").strip(), TokenPurpose.CODE_HABILITATION)
    if token is None or token.payload.get("siret") != siret:
        raise AccountError("Ce code d'activation n'est pas valide pour ce SIRET, a déjà été "
                           "utilisé ou a expiré.")
    token.used_at = clock.now()
    habilitation = _habilitation(user, siret)
    if habilitation is None:
        habilitation = Habilitation(user=user, siret=siret, role=HabilitationRole.GESTIONNAIRE)
        db.session.add(habilitation)
        db.session.flush()
    habilitation.role = HabilitationRole.GESTIONNAIRE
    if habilitation.state != HabilitationState.ACTIVE:
        # The administration's code is the decision: audited like every state change.
        workflow.fire(habilitation, "activer_par_code", actor=user,
                      reason="Code d'activation de l'administration")
    db.session.flush()
    return habilitation


def gestionnaire_sirets(user: User) -> list[str]:
    return sorted(set(db.session.scalars(select(Habilitation.siret).where(
        Habilitation.user_id == user.id, Habilitation.role == HabilitationRole.GESTIONNAIRE,
        Habilitation.state == HabilitationState.ACTIVE))))


def request_access(user: User, siret: str, role: str) -> Habilitation:
    siret = check_siret(siret)
    if role not in {r.value for r in HabilitationRole}:
        raise AccountError("Choisissez un rôle dans la liste.")
    existing = _habilitation(user, siret)
    if existing is not None and existing.state in (HabilitationState.ACTIVE,
                                                   HabilitationState.DEMANDEE):
        raise AccountError("Vous avez déjà une habilitation ou une demande en cours pour ce SIRET.")
    managers = list(db.session.scalars(select(User)
                                       .join(Habilitation, Habilitation.user_id == User.id)
                                       .where(Habilitation.siret == siret,
                                              Habilitation.role == HabilitationRole.GESTIONNAIRE,
                                              Habilitation.state == HabilitationState.ACTIVE)))
    if not managers:
        raise AccountError("Ce SIRET n'a pas encore de gestionnaire : son gestionnaire doit "
                           "d'abord activer son habilitation avec le code reçu.")
    if existing is not None:
        db.session.delete(existing)
        db.session.flush()
    habilitation = Habilitation(user=user, siret=siret, role=role)
    db.session.add(habilitation)
    db.session.flush()
    for manager in managers:
        queue_email(manager.email, "demande_habilitation", subject="Demande d'accès à votre SIRET",
                    related=habilitation, user=user, siret=siret,
                    role_label=HabilitationRole(role).label,
                    url=public_url("accounts.habilitations"))
    return habilitation


def change_role(habilitation: Habilitation, *, actor: User, role: str) -> None:
    if not _is_gestionnaire(actor, habilitation.siret):
        raise workflow.PermissionDenied("Vous n'êtes pas gestionnaire de ce SIRET.")
    if role not in {r.value for r in HabilitationRole}:
        raise AccountError("Choisissez un rôle dans la liste.")
    if habilitation.user_id == actor.id and role != HabilitationRole.GESTIONNAIRE:
        raise AccountError("Vous ne pouvez pas retirer votre propre rôle de gestionnaire.")
    habilitation.role = role


HABILITATION_TRANSITIONS = ("accepter", "refuser", "revoquer")


def decide_habilitation(habilitation: Habilitation, transition: str, *, actor: User,
                        reason: str | None = None) -> None:
    """« Accepter » or « refuser » an access request, « révoquer » an habilitation (the
    workflow checks that ``actor`` manages its SIRET); nobody revokes their own."""
    if transition not in HABILITATION_TRANSITIONS:
        raise AccountError("Cette action n'existe pas pour une habilitation.")
    if transition == "revoquer" and habilitation.user_id == actor.id:
        raise AccountError("Vous ne pouvez pas révoquer votre propre habilitation.")
    workflow.fire(habilitation, transition, actor=actor, reason=reason)
    habilitation.decided_by_id = actor.id


def revoke_delegation(delegation: Delegation, *, actor: User, reason: str | None = None) -> None:
    """« Révoquer » a delegation (the tiers is told by the workflow's notification)."""
    workflow.fire(delegation, "revoquer", actor=actor, reason=reason)


def _is_gestionnaire(user: User, siret: str) -> bool:
    return user.staff_role == "admin" or siret in gestionnaire_sirets(user)


def delegate(*, actor: User, siret_etablissement: str, siret_tiers: str, email_tiers: str,
             role: str, end_date: dt.date | None) -> Delegation:
    siret_etablissement = check_siret(siret_etablissement)
    siret_tiers = check_siret(siret_tiers)
    if not _is_gestionnaire(actor, siret_etablissement):
        raise workflow.PermissionDenied("Vous n'êtes pas gestionnaire de ce SIRET.")
    if role not in {r.value for r in HabilitationRole}:
        raise AccountError("Choisissez un rôle dans la liste.")
    if end_date is not None and end_date < clock.today():
        raise AccountError("La date de fin ne peut pas être passée.")
    delegation = Delegation(granted_by=actor, siret_etablissement=siret_etablissement,
                            siret_tiers=siret_tiers, email_tiers=email_tiers.strip().lower(),
                            role=role, end_date=end_date)
    db.session.add(delegation)
    db.session.flush()
    token, secret = Token.issue(purpose=TokenPurpose.ACCEPTATION_DELEGATION,
                                lifetime=DELEGATION_LIFETIME,
                                payload={"delegation_id": delegation.id})
    db.session.add(token)
    queue_email(delegation.email_tiers, "invitation_delegation",
                subject="Délégation proposée sur la démarche Mon Activité Formation",
                related=delegation, delegation=delegation, granted_by=actor,
                role_label=HabilitationRole(role).label,
                links={"url": secret_url("accounts.accept_delegation", secret=secret)},
                expires=clock.format_local(token.expires_at))
    return delegation


def delegation_for_token(secret: str) -> tuple[Token, Delegation]:
    token = find_token(secret, TokenPurpose.ACCEPTATION_DELEGATION)
    delegation = token and db.session.get(Delegation, token.payload.get("delegation_id"))
    if token is None or delegation is None or delegation.state != DelegationState.PROPOSEE:
        raise AccountError(INVALID_LINK)
    return token, delegation


def answer_delegation(secret: str, *, actor: User, accept: bool) -> Delegation:
    token, delegation = delegation_for_token(secret)
    workflow.fire(delegation, "accepter" if accept else "refuser", actor=actor)
    if accept:
        delegation.accepted_by = actor
    token.used_at = clock.now()
    return delegation


def search_demarche_users(*, sirets: list[str] | None, query: str = "", role: str = "",
                          tiers: str = "") -> list[dict]:
    """Users of the démarche: habilitations (tiers: no) and accepted delegations (tiers:
    yes), searchable by SIRET or name, filtered by role and tiers. ``sirets`` limits to
    those SIRETs (None: all, for the administration)."""
    rows = []
    query = (query or "").strip().lower()
    if tiers != "oui":
        stmt = select(Habilitation).where(Habilitation.state == HabilitationState.ACTIVE)
        if sirets is not None:
            stmt = stmt.where(Habilitation.siret.in_(sirets))
        for h in db.session.scalars(stmt):
            rows.append({"siret": h.siret, "user": h.user, "email": h.user.email,
                         "role": h.role, "tiers": False, "siret_tiers": None, "object": h})
    if tiers != "non":
        stmt = select(Delegation).where(Delegation.state == DelegationState.ACTIVE)
        if sirets is not None:
            stmt = stmt.where(Delegation.siret_etablissement.in_(sirets))
        for d in db.session.scalars(stmt):
            rows.append({"siret": d.siret_etablissement, "user": d.accepted_by,
                         "email": d.email_tiers, "role": d.role, "tiers": True,
                         "siret_tiers": d.siret_tiers, "object": d})
    if role:
        rows = [r for r in rows if r["role"] == role]
    if query:
        compact = re.sub(r"\s", "", query)

        def matches(row):
            user = row["user"]
            names = f"{user.nom} {user.prenom} {user.email}".lower() if user else row["email"]
            return (compact.isdigit() and (row["siret"].startswith(compact) or (
                row["siret_tiers"] or "").startswith(compact))) or query in names
        rows = [r for r in rows if matches(r)]
    return sorted(rows, key=lambda r: (r["siret"], r["email"]))

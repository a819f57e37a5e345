"""All models, one aggregate per module; import from here."""
from backoffice.models.accounts import (  # noqa: F401
    MfaRecoveryCode, SessionEndReason, UserSession,
    AccountRequest, AffiliationRequest, Delegation, DelegationState, Habilitation,
    HabilitationRole, HabilitationState, Membership, OfProfile, ParcoursProProfile,
    PrescriberProfile, PrescriberType, RateLimit, ReferencingRequest, RequestState, StaffRole,
    Structure, StructureKind, Token, TokenPurpose, User, UserState)
from backoffice.models.audit import (JobRun, JobRunStatus, PersonalDataAccess,  # noqa: F401
                                     RuleSetVersion, TransitionLog)
from backoffice.models.candidatures import (  # noqa: F401
    LIVE_CANDIDATURE_STATES, Candidate, Candidature, CandidatureState, Civilite, FollowUpStep)
from backoffice.models.catalogue import (  # noqa: F401
    Dispositif, EntryMode, EntryPoint, Formation, FormationState, Session, SessionState)
from backoffice.models.messaging import Channel, MessageStatus, OutboundMessage  # noqa: F401
from backoffice.models.reference import (  # noqa: F401
    DEPARTEMENTS_NOUVELLE_AQUITAINE, Certification, Commune)

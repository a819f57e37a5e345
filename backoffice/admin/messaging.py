"""Admin screen of the outbound queue (e-mails and hub messages).

What it shows is what staff may read: single-use links appear as « lien masqué » in the
bodies; their sealed value (``sealed_links``) is excluded from every list, detail, search,
filter and export by the base view. The lease of the sender delivering a message is
shown as « En cours d'envoi jusqu'à » (its token means nothing to staff and is hidden).
"""
from __future__ import annotations

from backoffice.admin.base import ReadOnlyModelView, state_filter
from backoffice.models import Channel, MessageStatus, OutboundMessage

CATEGORY = "Suivi"


class OutboundMessageView(ReadOnlyModelView):
    simple_list_pager = True
    column_list = ("channel", "recipient", "subject", "status", "attempts", "created_at",
                   "sent_at")
    column_details_exclude_list = (*ReadOnlyModelView.column_details_exclude_list,
                                   "claim_token")
    column_searchable_list = ("recipient", "subject")
    search_exact = ("recipient",)
    search_words = ""
    column_filters = (state_filter(OutboundMessage.channel, Channel, "Canal"),
                      state_filter(OutboundMessage.status, MessageStatus, "Statut"),
                      "created_at", "sent_at")
    enum_fields = {"channel": (Channel, "Canal"), "status": (MessageStatus, "Statut")}
    column_labels = {"recipient": "Destinataire", "subject": "Objet", "attempts": "Tentatives",
                     "sent_at": "Envoyé le", "body_text": "Texte", "body_html": "HTML",
                     "payload": "Contenu (hub)", "related_type": "Objet lié",
                     "related_id": "Identifiant lié", "idempotency_key": "Clé d'unicité",
                     "last_error": "Dernière erreur", "next_attempt_at": "Prochaine tentative",
                     "created_by_id": "Créé par",
                     "claimed_until": "En cours d'envoi jusqu'à"}


def register(admin) -> None:
    admin.add_view(OutboundMessageView(OutboundMessage, "Courriels", CATEGORY))

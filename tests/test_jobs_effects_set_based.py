"""The scheduled jobs fire their transitions set-based (``workflow.fire_many``): the
e-mails and hub messages they queue are those that firing each object one at a time
(``workflow.fire``) queues, and the e-mails of a batch, rendered from one stencil per
template, are those Jinja renders for each message (escaping included)."""
from __future__ import annotations

import datetime as dt

import jinja2
import pytest
from flask import current_app
from sqlalchemy import select

from backoffice import clock, notifications, workflow
from backoffice.extensions import db
from backoffice.models import Candidature, OutboundMessage, TransitionLog
from tests import factories as f

NOW = dt.datetime(2027, 3, 10, 9, 0, tzinfo=clock.PARIS)


def _messages(candidature: Candidature) -> list[tuple]:
    """What was queued about ``candidature``, its reference and log id left out."""
    log_id = db.session.scalar(select(TransitionLog.id).where(
        TransitionLog.object_type == "candidature", TransitionLog.object_id == candidature.id))
    rows = []
    for message in db.session.scalars(select(OutboundMessage).where(
            OutboundMessage.related_type == "candidature",
            OutboundMessage.related_id == candidature.id)):
        def plain(value):
            return None if value is None else str(value).replace(
                candidature.reference, "REF").replace(f"transition:{log_id}:", "transition:LOG:"
                                                      ).replace(f"hub:{log_id}", "hub:LOG")
        rows.append((message.channel, message.recipient, plain(message.subject),
                     plain(message.body_text), plain(message.body_html),
                     plain(message.payload), plain(message.idempotency_key)))
    return sorted(rows)


@pytest.mark.parametrize("state, transition", [
    ("en_attente_avis", "constater_avis_non_transmis"),  # the prescriber and the hub
    ("en_attente_validation", "expirer_validation"),  # the prescriber
])
def test_a_batch_queues_what_firing_each_candidature_queues(db, state, transition):
    with clock.frozen(NOW):
        candidate = f.create_candidate(nom="O'Brien <Léa>", prenom="Zoé & Cie",
                                       inscrit_france_travail=True,
                                       identifiant_france_travail="1234567A")
        session = f.create_published_session()
        structure = f.create_structure(kind="prescripteur", prescriber_type="france_travail")
        prescriber = f.create_prescriber(structure=structure)
        one, batch = (f.create_candidature(state=state, candidate=candidate, session=session,
                                           prescriber_user=prescriber,
                                           prescriber_structure=structure)
                      for _ in range(2))
        db.session.commit()
        workflow.fire(one, transition, actor=None, reason="Délai « dépassé »")
        db.session.commit()
        changed = workflow.fire_many(Candidature, [(batch.id, state)], transition,
                                     reason="Délai « dépassé »")
        db.session.commit()
    assert changed == [batch.id]
    queued = _messages(one)
    assert queued == _messages(batch)
    assert {channel for channel, *_ in queued} == (
        {"email", "hub"} if transition == "constater_avis_non_transmis" else {"email"})
    assert any("Zoé &amp; Cie O&#39;BRIEN &lt;LÉA&gt;" in (html or "")
               for *_, html, _payload, _key in queued)


def test_an_e_mail_from_its_stencil_is_the_e_mail_jinja_renders(app):
    context = notifications.transition_email_context(
        workflow.workflow_for(Candidature),
        workflow.workflow_for(Candidature).transitions["expirer_validation"],
        description="la candidature 1 de Zoé <b>O'Brien</b> & Cie", reason=None, at=NOW)
    alone = notifications.render_email("transition", **context)
    with notifications.keys_known("candidature", []):
        notifications.render_email("transition", varying=("description", "sentence"),
                                   **{**context, "description": "x", "sentence": "X"})
        stenciled = notifications.render_email(
            "transition", varying=("description", "sentence"), **context)
    assert stenciled == alone
    assert "Zoé &lt;b&gt;O&#39;Brien&lt;/b&gt; &amp; Cie" in stenciled[1]


def test_a_template_that_does_more_than_print_a_value_is_rendered_for_each(app, monkeypatch):
    """A varying value under a filter, or empty, cannot come from a stencil: the e-mail
    is rendered as it is."""
    loader = jinja2.ChoiceLoader([jinja2.DictLoader({
        "emails/essai.txt": "{{ nom|upper }} {% if prenom %}{{ prenom }}{% endif %}",
        "emails/essai.html": "<p>{{ nom }} {{ prenom }}</p>"}), current_app.jinja_env.loader])
    monkeypatch.setattr(current_app.jinja_env, "loader", loader)
    with notifications.keys_known("candidature", []):
        bodies = [notifications.render_email("essai", varying=("nom", "prenom"), nom=nom,
                                             prenom=prenom)
                  for nom, prenom in (("dupont", "Léa"), ("o'brien", "Zoé"), ("roy", ""))]
    assert bodies == [("DUPONT Léa", "<p>dupont Léa</p>"),
                      ("O'BRIEN Zoé", "<p>o&#39;brien Zoé</p>"), ("ROY ", "<p>roy </p>")]

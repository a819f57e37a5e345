"""Deterministic demo data for Nouvelle-Aquitaine (``backoffice demo-data``).

``generate(scale, seed)`` fills an empty database with a realistic regional offer and its
candidatures: the real communes of the twelve départements, Certif Info-style
certifications, training organisations (OF) and prescriber structures with Luhn-valid
SIRETs, their users and memberships, formations, sessions and HSP entry points,
candidates and candidatures in every state, plus some requests, habilitations,
delegations, transition-log rows and queued messages so that every admin list has data.

Scale 1 ≈ 2,000 formations, 8,000 sessions, 20,000 candidates, 40,000 candidatures;
scale 25 ≈ 1 million candidatures. Rows are written with Core bulk inserts in chunks, with
primary keys assigned here (after the current maximum), so that children reference their
parents without reading them back; on PostgreSQL the id sequences are moved past them at
the end.

Everything derives from ``random.Random(seed)``, a seeded ``Faker('fr_FR')`` and the
application clock (``clock.now()``, settable with ``--at``): the same seed at the same
instant gives the same data (except NIR ciphertexts, which Fernet salts at random).

The demo accounts (one per role, same password) are always created; ``accounts_table()``
lists them.
"""
from __future__ import annotations

import bisect
import csv
import datetime as dt
import functools
import hashlib
import itertools
import json
import operator
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import click
from faker import Faker
from faker.providers.person.fr_FR import Provider as FrenchPersonProvider
from sqlalchemy import JSON, Date, DateTime, func, insert, select, text
from stdnum import luhn
from werkzeug.security import generate_password_hash

from backoffice import clock, crypto, notifications, search, workflow
from backoffice.admin import text_index
from backoffice.extensions import db
from backoffice.models import (
    AccountRequest, AffiliationRequest, Candidate, Candidature, CandidatureState, Certification,
    Channel, Civilite, Commune, Delegation, DelegationState, Dispositif, EntryMode, EntryPoint,
    FollowUpStep, Formation, FormationState, Habilitation, HabilitationRole, HabilitationState,
    JobRun, JobRunStatus, Membership, MessageStatus, OfProfile, OutboundMessage,
    ParcoursProProfile, PrescriberProfile, PrescriberType, ReferencingRequest, RequestState,
    Session, SessionState, StaffRole, Structure, StructureKind, Token, TokenPurpose,
    TransitionLog, User, UserState)
from backoffice.models.base import UTCDateTime
from backoffice.models.reference import DEPARTEMENTS_NOUVELLE_AQUITAINE
from backoffice.text import fold, name_key

DEMO_PASSWORD = "Demo-Formation-2026"
# The demo staff accounts are enrolled in the second factor with this TOTP secret: add it
# to an authenticator app (or compute a code with ``oathtool --totp -b``) to log in as staff.
DEMO_TOTP_SECRET = "DEMOFORMATIONNOUVELLEAQUITAINE22"
DEMO_TOTP_LINE = (f"Comptes d'équipe : double authentification déjà activée avec la clé "
                  f"{DEMO_TOTP_SECRET} (à saisir dans une application d'authentification, "
                  "qui donne le code demandé après le mot de passe ; ou : backoffice demo-code).")

# (e-mail, key) of the demo accounts, in the order ``accounts_table`` shows them.
DEMO_ACCOUNTS = (
    ("admin@demo.fr", "admin"),
    ("moderateur@demo.fr", "moderateur"),
    ("regles@demo.fr", "responsable_regles"),
    ("of@demo.fr", "of"),
    ("referent@demo.fr", "referent"),
    ("prescripteur1@demo.fr", "prescripteur1"),
    ("prescripteur2@demo.fr", "prescripteur2"),
    ("prescripteur3@demo.fr", "prescripteur3"),
)
DEMO_EMAILS = tuple(email for email, _ in DEMO_ACCOUNTS)

COMMUNES_CSV = Path(__file__).parent / "data" / "communes-nouvelle-aquitaine-insee-2007.csv"

CHUNK = 10_000            # rows per INSERT … executemany
NIR_ENCRYPTED_MAX = 2_000  # NIRs encrypted (Fernet is slow at a million rows)

UTC = dt.timezone.utc
DAY = dt.timedelta(days=1)


class DemoDataError(click.ClickException):
    """Demo data cannot be generated here (shown as a French message by the CLI)."""


# --------------------------------------------------------------------------------------
# Reference pools
# --------------------------------------------------------------------------------------

# Real postal codes of the main towns (INSEE code → postal code); the others get a
# plausible code derived from their INSEE code (the 2007 file has no postal codes).
KNOWN_POSTAL_CODES = {
    "16015": "16000", "16102": "16100", "16291": "16600",
    "17300": "17000", "17299": "17300", "17306": "17200", "17415": "17100", "17274": "17180",
    "19272": "19000", "19031": "19100", "19275": "19200",
    "23096": "23000", "23176": "23300",
    "24322": "24000", "24037": "24100", "24520": "24200",
    "33063": "33000", "33281": "33700", "33318": "33600", "33522": "33400", "33039": "33130",
    "33119": "33150", "33069": "33110", "33192": "33170", "33243": "33500", "33449": "33160",
    "33529": "33260",
    "40192": "40000", "40088": "40100", "40312": "40220",
    "47001": "47000", "47157": "47200", "47323": "47300",
    "64445": "64000", "64102": "64100", "64122": "64200", "64024": "64600", "64430": "64300",
    "79191": "79000", "79049": "79300", "79270": "79400",
    "86194": "86000", "86066": "86100", "86041": "86180",
    "87085": "87000", "87154": "87200",
}
# Main towns: structures, sessions and candidates are concentrated there.
POLES = tuple(KNOWN_POSTAL_CODES)
BORDEAUX = "33063"

LEVELS = {"0": "Sans niveau", "3": "3 (CAP, BEP)", "4": "4 (Bac)", "5": "5 (Bac+2)",
          "6": "6 (Bac+3)", "7": "7 (Bac+5)"}

# type key → (label prefix, "préparation au/à la", typical length in months)
CERT_TYPES = {
    "TP": ("Titre professionnel", "au", 8), "CAP": ("CAP", "au", 12),
    "BACPRO": ("Bac professionnel", "au", 24), "BP": ("Brevet professionnel", "au", 24),
    "BTS": ("BTS", "au", 22), "BTSA": ("BTSA", "au", 22), "BUT": ("BUT", "au", 34),
    "LP": ("Licence professionnelle", "à la", 11), "DE": ("Diplôme d'État", "au", 11),
    "CQP": ("CQP", "au", 4), "MC": ("Mention complémentaire", "à la", 10),
    "RNCP": ("Titre RNCP", "au", 12), "BPJEPS": ("BPJEPS", "au", 12), "CERT": ("", "au", 2),
}

# (type, specialty, level, open to apprenticeship, domain)
CERTIFICATIONS = (
    ("TP", "Carreleur-chapiste", "3", True, "batiment"),
    ("TP", "Maçon", "3", True, "batiment"),
    ("TP", "Plaquiste", "3", True, "batiment"),
    ("TP", "Peintre en bâtiment", "3", True, "batiment"),
    ("TP", "Menuisier installateur", "3", True, "batiment"),
    ("TP", "Agent d'entretien du bâtiment", "3", False, "batiment"),
    ("TP", "Coffreur bancheur", "3", True, "batiment"),
    ("TP", "Façadier-peintre", "3", True, "batiment"),
    ("TP", "Technicien d'études du bâtiment en dessin de projet", "5", True, "batiment"),
    ("TP", "Chef de chantier gros œuvre", "5", True, "batiment"),
    ("CAP", "Maçon", "3", True, "batiment"),
    ("CAP", "Menuisier fabricant", "3", True, "batiment"),
    ("CAP", "Charpentier bois", "3", True, "batiment"),
    ("CAP", "Couvreur", "3", True, "batiment"),
    ("CAP", "Plâtrier-plaquiste", "3", True, "batiment"),
    ("CAP", "Carreleur mosaïste", "3", True, "batiment"),
    ("CAP", "Peintre applicateur de revêtements", "3", True, "batiment"),
    ("BACPRO", "Technicien d'études du bâtiment option études et économie", "4", True,
     "batiment"),
    ("BACPRO", "Menuiserie aluminium-verre", "4", True, "batiment"),
    ("BTS", "Bâtiment", "5", True, "batiment"),
    ("LP", "Métiers du BTP : bâtiment et construction", "6", True, "batiment"),
    ("TP", "Canalisateur", "3", True, "tp"),
    ("TP", "Conducteur d'engins : travaux publics", "3", True, "tp"),
    ("TP", "Constructeur en voirie urbaine et réseaux", "3", True, "tp"),
    ("CAP", "Constructeur de routes et d'aménagements urbains", "3", True, "tp"),
    ("BTS", "Travaux publics", "5", True, "tp"),
    ("TP", "Soudeur assembleur industriel", "3", True, "industrie"),
    ("TP", "Chaudronnier", "4", True, "industrie"),
    ("TP", "Tuyauteur industriel", "3", True, "industrie"),
    ("TP", "Technicien de maintenance industrielle", "4", True, "industrie"),
    ("TP", "Agent de fabrication industrielle", "3", False, "industrie"),
    ("TP", "Opérateur régleur en usinage", "3", True, "industrie"),
    ("TP", "Technicien d'usinage en commande numérique", "4", True, "industrie"),
    ("BACPRO", "Technicien en chaudronnerie industrielle", "4", True, "industrie"),
    ("BACPRO", "Maintenance des systèmes de production connectés", "4", True, "industrie"),
    ("BTS", "Maintenance des systèmes option A systèmes de production", "5", True,
     "industrie"),
    ("BTS", "Conception des processus de réalisation de produits", "5", True, "industrie"),
    ("BUT", "Qualité, logistique industrielle et organisation", "6", True, "industrie"),
    ("CQP", "Opérateur régleur sur machine-outil à commande numérique", "3", True,
     "industrie"),
    ("CQP", "Conducteur d'équipements industriels", "3", True, "industrie"),
    ("LP", "Maintenance et technologie : systèmes pluritechniques", "6", True, "industrie"),
    ("TP", "Électricien d'équipement du bâtiment", "3", True, "energie"),
    ("TP", "Installateur en thermique et sanitaire", "3", True, "energie"),
    ("TP", "Technicien de maintenance d'équipements de confort climatique", "4", True,
     "energie"),
    ("TP", "Monteur dépanneur frigoriste", "3", True, "energie"),
    ("TP", "Technicien d'équipement et d'exploitation en électricité", "4", True, "energie"),
    ("TP", "Installateur de réseaux de télécommunications", "3", True, "energie"),
    ("CAP", "Électricien", "3", True, "energie"),
    ("CAP", "Monteur en installations thermiques", "3", True, "energie"),
    ("BACPRO", "Métiers de l'électricité et de ses environnements connectés", "4", True,
     "energie"),
    ("BTS", "Électrotechnique", "5", True, "energie"),
    ("BTS", "Fluides, énergies, domotique option génie climatique et fluidique", "5", True,
     "energie"),
    ("TP", "Mécanicien automobile", "3", True, "automobile"),
    ("TP", "Carrossier réparateur", "3", True, "automobile"),
    ("TP", "Technicien après-vente automobile", "4", True, "automobile"),
    ("CAP", "Maintenance des véhicules option voitures particulières", "3", True,
     "automobile"),
    ("CAP", "Réparation des carrosseries", "3", True, "automobile"),
    ("BACPRO", "Maintenance des véhicules option voitures particulières", "4", True,
     "automobile"),
    ("TP", "Conducteur du transport routier de marchandises sur porteur", "3", True,
     "transport"),
    ("TP", "Conducteur du transport routier de marchandises sur tous véhicules", "3", True,
     "transport"),
    ("TP", "Conducteur du transport en commun sur route", "3", True, "transport"),
    ("TP", "Agent magasinier", "3", True, "transport"),
    ("TP", "Préparateur de commandes en entrepôt", "3", True, "transport"),
    ("TP", "Cariste d'entrepôt", "3", True, "transport"),
    ("TP", "Technicien supérieur en méthodes et exploitation logistique", "5", True,
     "transport"),
    ("CAP", "Opérateur/opératrice logistique", "3", True, "transport"),
    ("BACPRO", "Logistique", "4", True, "transport"),
    ("BTS", "Gestion des transports et logistique associée", "5", True, "transport"),
    ("LP", "Logistique et pilotage des flux", "6", True, "transport"),
    ("CERT", "CACES R489 — chariots de manutention automoteurs à conducteur porté", "0",
     False, "transport"),
    ("TP", "Vendeur conseil en magasin", "4", True, "commerce"),
    ("TP", "Employé commercial en magasin", "3", True, "commerce"),
    ("TP", "Manager d'unité marchande", "5", True, "commerce"),
    ("TP", "Négociateur technico-commercial", "5", True, "commerce"),
    ("TP", "Conseiller commercial", "4", True, "commerce"),
    ("TP", "Conseiller relation client à distance", "4", True, "commerce"),
    ("CAP", "Équipier polyvalent du commerce", "3", True, "commerce"),
    ("CAP", "Fleuriste", "3", True, "commerce"),
    ("BACPRO", "Métiers du commerce et de la vente option A animation et gestion de "
               "l'espace commercial", "4", True, "commerce"),
    ("BTS", "Management commercial opérationnel", "5", True, "commerce"),
    ("BTS", "Négociation et digitalisation de la relation client", "5", True, "commerce"),
    ("BTS", "Professions immobilières", "5", True, "commerce"),
    ("BUT", "Techniques de commercialisation", "6", True, "commerce"),
    ("LP", "Commerce et distribution", "6", True, "commerce"),
    ("LP", "Métiers de l'immobilier : transaction et commercialisation de biens "
           "immobiliers", "6", True, "commerce"),
    ("CQP", "Vendeur conseil en magasin", "3", True, "commerce"),
    ("RNCP", "Responsable de la distribution", "6", True, "commerce"),
    ("TP", "Secrétaire assistant", "4", True, "gestion"),
    ("TP", "Secrétaire comptable", "4", True, "gestion"),
    ("TP", "Assistant de direction", "5", True, "gestion"),
    ("TP", "Gestionnaire de paie", "5", True, "gestion"),
    ("TP", "Comptable assistant", "4", True, "gestion"),
    ("TP", "Gestionnaire comptable et fiscal", "5", True, "gestion"),
    ("TP", "Employé administratif et d'accueil", "3", True, "gestion"),
    ("TP", "Assistant ressources humaines", "5", True, "gestion"),
    ("TP", "Secrétaire assistant médico-social", "4", True, "gestion"),
    ("BACPRO", "Assistance à la gestion des organisations et de leurs activités", "4", True,
     "gestion"),
    ("BTS", "Gestion de la PME", "5", True, "gestion"),
    ("BTS", "Support à l'action managériale", "5", True, "gestion"),
    ("BTS", "Comptabilité et gestion", "5", True, "gestion"),
    ("BUT", "Gestion des entreprises et des administrations", "6", True, "gestion"),
    ("LP", "Métiers de la gestion et de la comptabilité : comptabilité et paie", "6", True,
     "gestion"),
    ("RNCP", "Responsable en gestion administrative et ressources humaines", "6", True,
     "gestion"),
    ("TP", "Développeur web et web mobile", "5", True, "informatique"),
    ("TP", "Concepteur développeur d'applications", "6", True, "informatique"),
    ("TP", "Technicien supérieur systèmes et réseaux", "5", True, "informatique"),
    ("TP", "Technicien d'assistance en informatique", "4", True, "informatique"),
    ("TP", "Administrateur d'infrastructures sécurisées", "6", True, "informatique"),
    ("BTS", "Services informatiques aux organisations option SLAM", "5", True,
     "informatique"),
    ("BTS", "Services informatiques aux organisations option SISR", "5", True,
     "informatique"),
    ("BUT", "Informatique", "6", True, "informatique"),
    ("RNCP", "Data analyst", "6", True, "informatique"),
    ("TP", "Designer web", "5", True, "communication"),
    ("TP", "Infographiste metteur en page", "4", True, "communication"),
    ("BTS", "Communication", "5", True, "communication"),
    ("RNCP", "Chargé de communication numérique", "6", True, "communication"),
    ("TP", "Cuisinier", "3", True, "hotellerie"),
    ("TP", "Serveur en restauration", "3", True, "hotellerie"),
    ("TP", "Agent de restauration", "3", True, "hotellerie"),
    ("TP", "Réceptionniste en hôtellerie", "4", True, "hotellerie"),
    ("TP", "Cuisinier en restauration collective", "3", True, "hotellerie"),
    ("CAP", "Cuisine", "3", True, "hotellerie"),
    ("CAP", "Commercialisation et services en hôtel-café-restaurant", "3", True,
     "hotellerie"),
    ("CAP", "Production et service en restaurations (rapide, collective, cafétéria)", "3",
     True, "hotellerie"),
    ("BACPRO", "Cuisine", "4", True, "hotellerie"),
    ("BACPRO", "Commercialisation et services en restauration", "4", True, "hotellerie"),
    ("BTS", "Management en hôtellerie-restauration", "5", True, "hotellerie"),
    ("MC", "Cuisinier en desserts de restaurant", "3", True, "hotellerie"),
    ("CQP", "Commis de cuisine", "3", True, "hotellerie"),
    ("CQP", "Serveur", "3", True, "hotellerie"),
    ("CAP", "Pâtissier", "3", True, "alimentation"),
    ("CAP", "Boulanger", "3", True, "alimentation"),
    ("CAP", "Boucher", "3", True, "alimentation"),
    ("CAP", "Charcutier-traiteur", "3", True, "alimentation"),
    ("CAP", "Poissonnier écailler", "3", True, "alimentation"),
    ("BP", "Boulanger", "4", True, "alimentation"),
    ("BACPRO", "Boulanger-pâtissier", "4", True, "alimentation"),
    ("MC", "Pâtisserie boulangère", "3", True, "alimentation"),
    ("DE", "d'aide-soignant", "4", True, "sante"),
    ("DE", "d'auxiliaire de puériculture", "4", True, "sante"),
    ("DE", "d'infirmier", "6", False, "sante"),
    ("DE", "d'ambulancier", "3", False, "sante"),
    ("TP", "Agent de service médico-social", "3", True, "sante"),
    ("TP", "Assistant de vie aux familles", "3", True, "services"),
    ("TP", "Agent de propreté et d'hygiène", "3", True, "proprete"),
    ("CAP", "Agent de propreté et d'hygiène", "3", True, "proprete"),
    ("BACPRO", "Hygiène, propreté, stérilisation", "4", True, "proprete"),
    ("CAP", "Accompagnant éducatif petite enfance", "3", True, "services"),
    ("BACPRO", "Accompagnement, soins et services à la personne", "4", True, "services"),
    ("DE", "d'accompagnant éducatif et social", "3", True, "social"),
    ("DE", "de moniteur éducateur", "4", True, "social"),
    ("DE", "d'éducateur spécialisé", "6", True, "social"),
    ("DE", "de technicien de l'intervention sociale et familiale", "4", True, "social"),
    ("DE", "d'assistant de service social", "6", True, "social"),
    ("TP", "Conseiller en insertion professionnelle", "5", True, "social"),
    ("TP", "Formateur professionnel d'adultes", "5", True, "social"),
    ("BTS", "Économie sociale familiale", "5", True, "social"),
    ("BTS", "Services et prestations des secteurs sanitaire et social", "5", True, "social"),
    ("BUT", "Carrières sociales", "6", True, "social"),
    ("CAP", "Métiers de l'agriculture", "3", True, "agriculture"),
    ("BP", "Responsable d'entreprise agricole", "4", True, "agriculture"),
    ("BACPRO", "Conduite et gestion de l'entreprise agricole", "4", True, "agriculture"),
    ("BTSA", "Agronomie et cultures durables", "5", True, "agriculture"),
    ("BTSA", "Technico-commercial", "5", True, "agriculture"),
    ("CAP", "Agricole palefrenier soigneur", "3", True, "agriculture"),
    ("CAP", "Agricole métiers de l'agriculture option vigne et vin", "3", True,
     "viticulture"),
    ("BP", "Responsable d'entreprise agricole option viticulture", "4", True,
     "viticulture"),
    ("BACPRO", "Conduite et gestion de l'entreprise vitivinicole", "4", True,
     "viticulture"),
    ("BTSA", "Viticulture-œnologie", "5", True, "viticulture"),
    ("LP", "Commerce des vins et des spiritueux", "6", True, "viticulture"),
    ("CQP", "Ouvrier qualifié de l'exploitation viticole", "3", True, "viticulture"),
    ("TP", "Ouvrier du paysage", "3", True, "paysage"),
    ("CAP", "Jardinier paysagiste", "3", True, "paysage"),
    ("BACPRO", "Aménagements paysagers", "4", True, "paysage"),
    ("BTSA", "Aménagements paysagers", "5", True, "paysage"),
    ("BTSA", "Gestion et protection de la nature", "5", True, "paysage"),
    ("BTSA", "Gestion forestière", "5", True, "paysage"),
    ("CAP", "Coiffure", "3", True, "beaute"),
    ("CAP", "Esthétique, cosmétique, parfumerie", "3", True, "beaute"),
    ("BP", "Coiffure", "4", True, "beaute"),
    ("BP", "Esthétique, cosmétique, parfumerie", "4", True, "beaute"),
    ("MC", "Coiffure coupe couleur", "3", True, "beaute"),
    ("TP", "Agent de sûreté et de sécurité privée", "3", True, "securite"),
    ("CQP", "Agent de prévention et de sécurité", "3", False, "securite"),
    ("CAP", "Agent de sécurité", "3", True, "securite"),
    ("CERT", "Service de sécurité incendie et d'assistance à personnes (SSIAP 1)", "0",
     False, "securite"),
    ("TP", "Responsable d'établissement touristique", "5", True, "tourisme"),
    ("TP", "Conseiller en séjours et voyages", "5", True, "tourisme"),
    ("BTS", "Tourisme", "5", True, "tourisme"),
    ("BPJEPS", "Activités physiques pour tous", "4", True, "animation"),
    ("BPJEPS", "Animation sociale", "4", True, "animation"),
    ("BPJEPS", "Activités aquatiques et de la natation", "4", True, "animation"),
    ("CQP", "Animateur périscolaire", "3", False, "animation"),
    ("CERT", "Certificat CléA — socle de connaissances et de compétences "
             "professionnelles", "0", False, "savoirs"),
    ("CERT", "Certificat CléA numérique", "0", False, "savoirs"),
    ("CERT", "Diplôme de compétence en langue (DCL) français professionnel", "0", False,
     "savoirs"),
    ("CERT", "Diplôme d'accès aux études universitaires (DAEU) option A", "4", False,
     "savoirs"),
)

# domain → (sector phrase, capabilities, modules)
DOMAINS = {
    "batiment": ("du bâtiment", (
        "lire un plan et organiser son poste de travail", "réaliser les ouvrages dans le "
        "respect des règles de l'art", "appliquer les règles de sécurité sur chantier",
        "contrôler la qualité de ses réalisations", "utiliser l'outillage et les matériels "
        "spécifiques au métier"), (
        "Lecture de plans et métrés", "Préparation du chantier et approvisionnement",
        "Techniques de mise en œuvre", "Finitions et contrôle qualité",
        "Prévention des risques liés à l'activité physique (PRAP)",
        "Travail en hauteur et échafaudages", "Sauveteur secouriste du travail (SST)")),
    "tp": ("des travaux publics", (
        "implanter et piqueter un ouvrage", "conduire les engins en sécurité",
        "poser des réseaux et des bordures", "respecter la signalisation temporaire de "
        "chantier"), (
        "Topographie et implantation", "Terrassement et fouilles",
        "Pose de canalisations", "Signalisation temporaire de chantier",
        "Autorisation d'intervention à proximité des réseaux (AIPR)",
        "Conduite d'engins (CACES R482)")),
    "industrie": ("de l'industrie", (
        "préparer et régler une machine de production", "lire un dossier de fabrication",
        "diagnostiquer une panne et intervenir en maintenance", "contrôler la conformité des "
        "pièces produites"), (
        "Lecture de plans industriels", "Métrologie et contrôle", "Usinage conventionnel",
        "Programmation de commande numérique", "Maintenance préventive et corrective",
        "Qualité, hygiène, sécurité, environnement", "Habilitation électrique B1V-BR")),
    "energie": ("de l'électricité et de l'énergie", (
        "réaliser une installation électrique conforme à la norme NF C 15-100",
        "mettre en service et dépanner des équipements", "installer des systèmes de "
        "chauffage et de climatisation", "conseiller le client sur les économies "
        "d'énergie"), (
        "Électricité fondamentale", "Schémas et lecture de plans",
        "Installation et raccordement", "Domotique et objets connectés",
        "Génie climatique et fluides frigorigènes", "Habilitation électrique",
        "Mise en service et dépannage")),
    "automobile": ("de l'automobile", (
        "effectuer l'entretien périodique d'un véhicule", "diagnostiquer un "
        "dysfonctionnement avec l'outil de diagnostic", "remplacer des éléments "
        "mécaniques", "accueillir le client et restituer le véhicule"), (
        "Moteur et transmission", "Freinage et liaisons au sol", "Électricité et "
        "électronique embarquée", "Véhicules électriques et hybrides (habilitation)",
        "Diagnostic", "Relation client en atelier")),
    "transport": ("du transport et de la logistique", (
        "réceptionner, stocker et préparer les marchandises", "conduire en sécurité un "
        "véhicule lourd", "utiliser un logiciel de gestion d'entrepôt", "appliquer la "
        "réglementation sociale européenne"), (
        "Réception et contrôle des marchandises", "Gestion des stocks et inventaires",
        "Préparation de commandes et expédition", "Conduite de chariots (CACES R489)",
        "Réglementation du transport", "Conduite rationnelle et sécurité routière",
        "Formation initiale minimale obligatoire (FIMO)")),
    "commerce": ("du commerce et de la vente", (
        "accueillir et conseiller le client", "animer un rayon et mettre en valeur les "
        "produits", "conduire un entretien de vente", "suivre les indicateurs commerciaux "
        "d'une unité marchande"), (
        "Techniques de vente et de négociation", "Merchandising et marchandisage",
        "Gestion des approvisionnements", "Relation client omnicanale",
        "Gestion commerciale et tableaux de bord", "Management d'équipe")),
    "gestion": ("de la gestion et de l'administration", (
        "assurer les travaux courants de secrétariat", "tenir la comptabilité et préparer "
        "les déclarations fiscales", "établir les bulletins de paie", "gérer les dossiers "
        "du personnel"), (
        "Bureautique (traitement de texte, tableur)", "Communication écrite "
        "professionnelle", "Comptabilité générale", "Paie et déclarations sociales",
        "Gestion administrative du personnel", "Logiciels de gestion intégrés",
        "Accueil physique et téléphonique")),
    "informatique": ("de l'informatique et du numérique", (
        "développer une application web sécurisée", "administrer un réseau d'entreprise",
        "concevoir une base de données", "assister les utilisateurs et résoudre les "
        "incidents"), (
        "Algorithmique et programmation", "Développement front-end (HTML, CSS, JavaScript)",
        "Développement back-end et bases de données", "Réseaux et systèmes",
        "Cybersécurité", "Gestion de projet agile", "Projet professionnel")),
    "communication": ("de la communication et de la création graphique", (
        "concevoir des supports de communication imprimés et numériques", "réaliser des "
        "maquettes et des visuels", "animer les réseaux sociaux d'une organisation",
        "respecter une charte graphique"), (
        "Culture graphique et typographie", "Suite Adobe et outils libres",
        "Conception de sites web", "Stratégie de communication numérique",
        "Référencement et réseaux sociaux", "Droit de l'image et de la propriété "
        "intellectuelle")),
    "hotellerie": ("de l'hôtellerie et de la restauration", (
        "préparer et dresser des plats", "accueillir et servir la clientèle",
        "appliquer les règles d'hygiène alimentaire (HACCP)", "gérer les stocks et les "
        "commandes de denrées"), (
        "Techniques culinaires", "Service en salle et au bar", "Hygiène et sécurité "
        "alimentaire (HACCP)", "Accueil et relation client", "Anglais professionnel",
        "Gestion des approvisionnements", "Stage en restaurant d'application")),
    "alimentation": ("des métiers de bouche", (
        "fabriquer des produits de boulangerie et de pâtisserie", "travailler les viandes "
        "et préparer les commandes", "appliquer les règles d'hygiène et de traçabilité",
        "conseiller et servir le client en boutique"), (
        "Technologie professionnelle", "Fabrication et cuisson", "Hygiène et traçabilité",
        "Vente en boutique", "Sciences appliquées à l'alimentation",
        "Gestion de l'entreprise artisanale")),
    "sante": ("de la santé", (
        "accompagner la personne dans les activités de la vie quotidienne", "évaluer "
        "l'état clinique d'une personne", "mettre en œuvre des soins adaptés",
        "travailler en équipe pluriprofessionnelle"), (
        "Accompagnement de la personne", "Soins et état clinique", "Hygiène et prévention "
        "des infections", "Ergonomie et manutention des personnes", "Relation et "
        "communication avec les patients", "Stages cliniques")),
    "services": ("des services à la personne", (
        "entretenir le cadre de vie d'une personne", "accompagner une personne âgée ou en "
        "situation de handicap", "prendre en charge de jeunes enfants", "préparer des "
        "repas adaptés"), (
        "Entretien du logement et du linge", "Accompagnement dans les actes essentiels",
        "Garde d'enfants à domicile", "Préparation des repas", "Prévention des risques "
        "au domicile", "Sauveteur secouriste du travail (SST)")),
    "social": ("du travail social et de l'insertion", (
        "accompagner des publics en difficulté", "conduire un entretien d'aide",
        "travailler en réseau avec les partenaires", "concevoir et animer des actions "
        "collectives"), (
        "Connaissance des publics et des politiques sociales", "Accompagnement "
        "individualisé", "Animation de groupe", "Travail en partenariat et en réseau",
        "Écrits professionnels", "Stages pratiques")),
    "agriculture": ("de l'agriculture", (
        "conduire des cultures et un élevage", "utiliser et entretenir le matériel "
        "agricole", "gérer une exploitation agricole", "appliquer les pratiques de "
        "l'agroécologie"), (
        "Agronomie et productions végétales", "Productions animales", "Agroéquipement",
        "Gestion de l'exploitation", "Agroécologie et transition", "Certiphyto")),
    "viticulture": ("de la vigne et du vin", (
        "réaliser les travaux de la vigne", "conduire la vinification", "conduire un "
        "tracteur enjambeur en sécurité", "commercialiser les vins de l'exploitation"), (
        "Taille et travaux en vert", "Conduite du vignoble", "Œnologie et vinification",
        "Machinisme viticole", "Commercialisation et œnotourisme",
        "Certiphyto")),
    "paysage": ("du paysage et de l'environnement", (
        "réaliser des aménagements paysagers", "entretenir les espaces verts",
        "reconnaître les végétaux", "utiliser le matériel motorisé en sécurité"), (
        "Reconnaissance des végétaux", "Création d'espaces verts", "Maçonnerie paysagère",
        "Entretien et taille", "Gestion différenciée", "Matériels et sécurité")),
    "beaute": ("de la coiffure et de l'esthétique", (
        "réaliser des coupes et des colorations", "réaliser des soins esthétiques",
        "conseiller et vendre des produits", "gérer un salon"), (
        "Techniques de coupe et de coiffage", "Coloration et permanente", "Soins du "
        "visage et du corps", "Maquillage", "Vente et conseil", "Gestion d'un salon")),
    "securite": ("de la sécurité", (
        "surveiller un site et contrôler les accès", "appliquer les consignes de sécurité "
        "incendie", "intervenir en cas d'incident", "rédiger une main courante"), (
        "Cadre juridique de l'intervention", "Surveillance et rondes", "Sécurité "
        "incendie", "Gestion des conflits", "Secourisme (SST)", "Module palpation et "
        "filtrage")),
    "tourisme": ("du tourisme", (
        "concevoir et vendre des séjours", "accueillir une clientèle française et "
        "étrangère", "promouvoir un territoire", "gérer un établissement touristique"), (
        "Produits touristiques", "Accueil et langues étrangères", "Marketing "
        "territorial", "Gestion et réservation", "Événementiel")),
    "animation": ("du sport et de l'animation", (
        "encadrer des activités physiques en sécurité", "concevoir un projet "
        "d'animation", "accueillir des publics variés", "participer au fonctionnement "
        "d'une structure"), (
        "Conception de séances", "Encadrement et sécurité des pratiquants",
        "Connaissance des publics", "Projet d'animation", "Fonctionnement des "
        "associations", "PSC1")),
    "savoirs": ("des savoirs de base", (
        "communiquer à l'écrit et à l'oral", "utiliser les règles de calcul et le "
        "raisonnement mathématique", "utiliser les outils numériques", "travailler en "
        "équipe et en autonomie"), (
        "Communication en français", "Calcul et raisonnement mathématique",
        "Environnement numérique", "Travail en équipe", "Apprendre à apprendre",
        "Gestes et postures")),
    "proprete": ("de la propreté", (
        "réaliser l'entretien courant et la remise en état des locaux", "utiliser les "
        "machines et produits en sécurité", "appliquer les protocoles d'hygiène",
        "organiser son intervention chez le client"), (
        "Techniques d'entretien", "Machines et produits", "Protocoles d'hygiène en milieu "
        "sensible", "Relation client", "Prévention des risques professionnels")),
}

# OF networks: (name pattern, sigle, domains, several establishments under one SIREN?)
OF_NETWORKS = (
    ("Afpa — centre {de_ville}", "AFPA", ("batiment", "industrie", "transport", "gestion",
                                          "informatique", "hotellerie", "services",
                                          "energie", "proprete", "securite"), True),
    ("Greta-CFA {secteur}", "GRETA", ("gestion", "commerce", "sante", "social", "hotellerie",
                                      "batiment", "industrie", "savoirs", "informatique"),
     True),
    ("BTP CFA {dept}", "BTP CFA", ("batiment", "tp", "energie"), False),
    ("Chambre de métiers et de l'artisanat Nouvelle-Aquitaine — {dept}", "CMA",
     ("alimentation", "beaute", "automobile", "batiment", "commerce"), True),
    ("Maison familiale rurale {de_ville}", "MFR", ("agriculture", "services", "paysage",
                                                   "commerce", "social"), False),
    ("CFPPA {de_ville}", "CFPPA", ("agriculture", "viticulture", "paysage"), False),
    ("Institut de formation d'aides-soignants {de_ville}", "IFAS", ("sante",), False),
    ("Institut régional du travail social Nouvelle-Aquitaine — site {de_ville}", "IRTS",
     ("social",), True),
    ("Croix-Rouge compétence Nouvelle-Aquitaine — {ville}", None, ("sante", "social",
                                                                     "services"), True),
    ("AFTRAL {ville}", "AFTRAL", ("transport",), True),
    ("Promotrans {ville}", None, ("transport", "automobile"), True),
    ("Le Cnam Nouvelle-Aquitaine — centre {de_ville}", "CNAM", ("gestion", "informatique",
                                                                 "commerce", "industrie"),
     True),
    ("CCI formation {dept}", "CCI", ("commerce", "gestion", "hotellerie", "tourisme"), False),
    ("Compagnons du Devoir — maison {de_ville}", None, ("batiment", "industrie",
                                                        "alimentation"), True),
    ("Lycée professionnel {personne} — {ville}", "LP", ("commerce", "gestion", "industrie",
                                                       "energie", "hotellerie"), False),
    ("École hôtelière {de_ville}", None, ("hotellerie", "tourisme"), False),
    ("Campus des métiers {de_ville}", None, ("alimentation", "beaute", "automobile",
                                             "hotellerie"), False),
    ("UFCV Nouvelle-Aquitaine — {ville}", "UFCV", ("animation", "social"), True),
    ("Digital Campus {ville}", None, ("informatique", "communication"), False),
    ("{nom} Formation Conseil", None, None, False),
    ("Institut {nom}", None, None, False),
    ("{ville} Compétences", None, None, False),
    ("Sécuriforce {ville}", None, ("securite",), False),
    ("Académie des métiers de la propreté — {ville}", None, ("proprete", "services"), False),
)
LYCEE_NAMES = ("Jean Moulin", "Marcel Dassault", "Jacques Prévert", "Émile Combes",
               "Louis Pasteur", "Jules Ferry", "Marie Curie", "Victor Hugo",
               "Gustave Eiffel", "Raymond Loewy", "Léonard de Vinci", "Jean Monnet",
               "Simone Veil", "Pierre-Mendès-France", "Aliénor d'Aquitaine")
GRETA_SECTEURS = ("Aquitaine", "Sud-Aquitaine", "Poitou-Charentes", "du Limousin",
                  "Gironde Est", "Landes-Béarn", "Périgord", "Lot-et-Garonne",
                  "Charente-Maritime")

# prescriber kinds: (type, weight, name pattern, sigle)
PRESCRIBER_KINDS = (
    (PrescriberType.FRANCE_TRAVAIL, 40, "France Travail {ville}", None),
    (PrescriberType.MISSION_LOCALE, 25, "Mission locale {territoire}", None),
    (PrescriberType.CAP_EMPLOI, 8, "Cap emploi {dept}", None),
    (PrescriberType.ARMEE_DE_TERRE, 4, "CIRFA Armée de terre {de_ville}", "CIRFA"),
    (PrescriberType.ARMEE_DE_L_AIR, 2, "CIRFA Armée de l'air et de l'espace {de_ville}",
     "CIRFA"),
    (PrescriberType.MARINE_NATIONALE, 2, "CIRFA Marine nationale {de_ville}", "CIRFA"),
    (PrescriberType.GENDARMERIE, 3, "Centre d'information et de recrutement de la "
                                    "Gendarmerie {de_ville}", "CIR"),
    (PrescriberType.AUTRE, 8, "{autre}", None),
)
AUTRES_PRESCRIPTEURS = ("PLIE {de_ville}", "CCAS {de_ville}", "SPIP {dept}",
                        "École de la 2e chance — site {de_ville}",
                        "Département {dept} — service insertion",
                        "Association d'insertion {ville} Emploi")
BORDEAUX_AGENCIES = ("Bordeaux Bastide", "Bordeaux Chartrons", "Bordeaux Saint-Jean",
                     "Bordeaux Lac", "Bordeaux Grand Parc")

# (masculine, feminine)
OF_USER_FUNCTIONS = (("Responsable pédagogique", "Responsable pédagogique"),
                     ("Assistant de formation", "Assistante de formation"),
                     ("Chargé des inscriptions", "Chargée des inscriptions"),
                     ("Directeur du centre", "Directrice du centre"),
                     ("Coordinateur pédagogique", "Coordinatrice pédagogique"),
                     ("Conseiller en formation", "Conseillère en formation"),
                     ("Chargé de relations entreprises", "Chargée de relations entreprises"),
                     ("Responsable administratif", "Responsable administrative"))
PRESCRIBER_USER_FUNCTIONS = (("Conseiller emploi", "Conseillère emploi"),
                             ("Conseiller en insertion professionnelle",
                              "Conseillère en insertion professionnelle"),
                             ("Conseiller référent formation", "Conseillère référente formation"),
                             ("Chargé d'accompagnement", "Chargée d'accompagnement"),
                             ("Responsable d'équipe", "Responsable d'équipe"),
                             ("Directeur d'agence", "Directrice d'agence"))

EXTRA_LAST_NAMES = ("Le Gall", "Le Bihan", "N'Diaye", "M'Bappé", "D'Almeida", "Da Silva",
                    "Martin-Lefèvre", "Dupont-Léger", "Lacoste-Darrigrand", "Etcheverry",
                    "Larrieu", "Castaing", "Dufau", "Bernadet", "Lafargue", "Garrigue",
                    "Nguyen", "Benali", "Traoré", "Haddad", "Ferreira", "Çelik",
                    "Saint-Martin", "De La Fontaine", "Héraud", "Pérez", "Boërio",
                    "Lépine", "Élissalde", "Ospital")
EXTRA_FIRST_NAMES_F = ("Élodie", "Anaïs", "Maëlle", "Chloé", "Léa", "Inès", "Noémie",
                       "Hélène", "Marie-Claire", "Anne-Sophie", "Zoé", "Aïcha", "Maïwenn")
EXTRA_FIRST_NAMES_M = ("Jean-Baptiste", "Jean-Pierre", "Pierre-Louis", "Loïc", "Gaël",
                       "Noé", "Jérémy", "Mathéo", "Anthony", "Kévin", "Yanis", "Raphaël",
                       "Léo-Paul")

PARCOURS_ANTERIEURS = (
    "Bac général obtenu en {annee}, puis plusieurs emplois saisonniers.",
    "Demandeur d'emploi depuis {mois} mois, ancien ouvrier agricole.",
    "CAP Vente obtenu, puis missions d'intérim en logistique.",
    "Sortie de seconde sans diplôme, accompagnement en garantie jeunes.",
    "Dix ans d'expérience comme agent de production, licenciement économique en {annee}.",
    "Reconversion après une carrière militaire de {mois} mois.",
    "Titulaire d'un BTS, emplois précaires dans la grande distribution.",
    "Mère au foyer pendant plusieurs années, reprise d'activité souhaitée.",
    "Expérience de {mois} mois en restauration collective, sans qualification.",
    "Parcours d'insertion (chantier d'insertion) réalisé avec succès.",
    "Arrivé en France en {annee}, cours de français langue étrangère suivis.",
    "Licence inachevée, emplois d'employé administratif en intérim.",
)
RAISONS_CHOIX = (
    "Projet validé par une période de mise en situation en milieu professionnel.",
    "Le candidat souhaite se qualifier dans un métier qui recrute sur le territoire.",
    "Formation proche du domicile, compatible avec la garde des enfants.",
    "Projet mûri après une enquête métier et des rencontres avec des professionnels.",
    "Promesse d'embauche sous réserve d'obtention de la certification.",
    "Reconversion rendue nécessaire pour raisons de santé.",
    "Le candidat a déjà une expérience dans le secteur et veut la faire reconnaître.",
    "Entrée en apprentissage avec une entreprise déjà identifiée.",
)
SUITES_PARCOURS = (
    "Recherche d'emploi dans le secteur à l'issue de la formation.",
    "Poursuite possible vers une certification de niveau supérieur.",
    "Embauche prévue dans l'entreprise d'accueil.",
    "Création d'activité envisagée.",
    "Accompagnement renforcé à prévoir après la formation.",
)
MOTIFS_NON_RETENUE = (
    "Prérequis non acquis : le niveau en français écrit est insuffisant.",
    "Projet professionnel à consolider avant l'entrée en formation.",
    "Candidat absent à l'entretien de positionnement.",
    "Pas d'entreprise d'accueil trouvée pour l'alternance.",
    "Contre-indication médicale au métier visé.",
    "Les tests de positionnement ne sont pas concluants.",
)
MOTIF_COMPLETE = "Session complète : la candidature pourra être proposée sur la prochaine session."
MOTIF_ANNULEE = "Session annulée faute d'un nombre suffisant de stagiaires."
COMMENTAIRES_MODERATION = (
    "Merci de préciser le programme détaillé et les modalités d'évaluation.",
    "Le lien web ne renvoie pas vers la page de la formation.",
    "La certification ne correspond pas à l'intitulé : merci de vérifier le code Certif Info.",
    "Les dates de session semblent incohérentes avec la durée annoncée.",
)
REQUEST_MESSAGES = (
    "Bonjour, je viens de rejoindre l'équipe et souhaite accéder au back office.",
    "Je remplace ma collègue partie en retraite sur la gestion des inscriptions.",
    "Merci de bien vouloir valider mon accès, je suis conseiller dans la structure.",
    None,
)

# Candidature state weights, by timing of the session.
STATE_WEIGHTS_UPCOMING = {
    CandidatureState.BROUILLON: 10, CandidatureState.EN_ATTENTE_VALIDATION: 8,
    CandidatureState.EN_ATTENTE_AVIS: 38, CandidatureState.RETENUE: 18,
    CandidatureState.NON_RETENUE: 10, CandidatureState.REFUS_SESSION_COMPLETE: 3,
    CandidatureState.ANNULEE: 6, CandidatureState.CORBEILLE: 7,
}
STATE_WEIGHTS_PAST = {
    CandidatureState.RETENUE: 34, CandidatureState.NON_RETENUE: 22,
    CandidatureState.REFUS_SESSION_COMPLETE: 6, CandidatureState.ANNULEE: 12,
    CandidatureState.AVIS_NON_TRANSMIS: 14, CandidatureState.CORBEILLE: 8,
}
STATE_WEIGHTS_CANCELLED = {
    CandidatureState.REFUS_SESSION_ANNULEE: 70, CandidatureState.ANNULEE: 20,
    CandidatureState.CORBEILLE: 10,
}
AVIS_STATES = frozenset({CandidatureState.RETENUE, CandidatureState.NON_RETENUE,
                         CandidatureState.REFUS_SESSION_COMPLETE,
                         CandidatureState.REFUS_SESSION_ANNULEE})
AVIS_TRANSITIONS = {
    CandidatureState.RETENUE: "retenir", CandidatureState.NON_RETENUE: "ne_pas_retenir",
    CandidatureState.REFUS_SESSION_COMPLETE: "refuser_session_complete",
    CandidatureState.REFUS_SESSION_ANNULEE: "refuser_session_annulee",
}
FORMATION_STATE_WEIGHTS = {
    FormationState.VALIDEE: 70, FormationState.EN_ATTENTE_MODERATION: 6,
    FormationState.BROUILLON: 6, FormationState.COMPLEMENT_DEMANDE: 3,
    FormationState.MODIFIEE: 4, FormationState.ARCHIVEE: 8, FormationState.SUPPRIMEE: 3,
}
PUBLISHED_FORMATION_STATES = frozenset({FormationState.VALIDEE, FormationState.MODIFIEE,
                                        FormationState.ARCHIVEE})
DISPOSITIF_WEIGHTS = {Dispositif.HSP: 15, Dispositif.CONVENTIONNE_REGION: 25,
                      Dispositif.NON_CONVENTIONNE: 35, Dispositif.APPRENTISSAGE: 25}
FINANCEMENTS = {
    Dispositif.HSP: ("Financée par la Région Nouvelle-Aquitaine (habilitation de service "
                     "public) : gratuite pour le stagiaire, rémunération possible",),
    Dispositif.CONVENTIONNE_REGION: (
        "Région Nouvelle-Aquitaine (Programme régional de formation) ; rémunération "
        "possible selon le statut",
        "Région Nouvelle-Aquitaine et France Travail (achat conjoint)"),
    Dispositif.NON_CONVENTIONNE: (
        "CPF, Projet de transition professionnelle ou financement personnel",
        "Plan de développement des compétences de l'employeur, CPF",
        "Aide individuelle à la formation (France Travail), CPF, financement personnel"),
    Dispositif.APPRENTISSAGE: (
        "Contrat d'apprentissage : coût pris en charge par l'OPCO de l'employeur",
        "Contrat d'apprentissage ou de professionnalisation (OPCO)"),
}


# --------------------------------------------------------------------------------------
# Public API (used by ``backoffice.cli``)
# --------------------------------------------------------------------------------------

def database_is_empty() -> bool:
    """True when the database holds no structure (nothing was loaded yet)."""
    return db.session.scalar(select(Structure.id).limit(1)) is None


def generate(scale: float, seed: int, echo: Callable[[str], object] = print) -> str:
    """Generate deterministic demo data and return a French summary report."""
    if scale <= 0:
        raise DemoDataError("L'échelle doit être strictement positive (ex. 0.1, 1, 25).")
    if not database_is_empty():
        raise DemoDataError(
            "La base contient déjà des structures : les données de démonstration se chargent "
            "dans une base vide (utilisez --if-empty pour ne rien faire dans ce cas).")
    generator = _Generator(scale=scale, seed=seed, echo=echo)
    return generator.run()


def accounts_table() -> str:
    """A French text table of the demo accounts present in the database."""
    users = {u.email: u for u in db.session.scalars(
        select(User).where(User.email.in_(DEMO_EMAILS)))}
    if not users:
        return ("Aucun compte de démonstration dans la base : chargez les données avec "
                "« backoffice demo-data ».")
    memberships: dict[int, Membership] = {}
    for membership in db.session.scalars(
            select(Membership).where(Membership.user_id.in_([u.id for u in users.values()]))
            .order_by(Membership.id)):
        memberships.setdefault(membership.user_id, membership)
    structures = {s.id: s for s in db.session.scalars(
        select(Structure).where(Structure.id.in_([m.structure_id
                                                  for m in memberships.values()])))}
    checked: dict[str | None, bool] = {}
    rows = []
    for email, _key in DEMO_ACCOUNTS:
        user = users.get(email)
        if user is None:
            continue
        membership = memberships.get(user.id)
        structure = structures.get(membership.structure_id) if membership else None
        if user.password_hash not in checked:  # one scrypt check per distinct hash
            checked[user.password_hash] = user.check_password(DEMO_PASSWORD)
        password = DEMO_PASSWORD if checked[user.password_hash] else "(modifié)"
        if user.state != UserState.ACTIF:
            password += f" — compte {UserState(user.state).label.lower()}"
        rows.append((_role_label(user, membership), email, password,
                     structure.raison_sociale if structure else "Cap Métiers (équipe régionale)"))
    headers = ("Rôle", "Courriel", "Mot de passe", "Structure")
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    out = ["Comptes de démonstration (connexion sur /connexion) :", "",
           "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), line]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    out += ["", DEMO_TOTP_LINE]
    return "\n".join(out)


def _role_label(user: User, membership: Membership | None) -> str:
    if user.staff_role:
        return StaffRole(user.staff_role).label
    if membership is None:
        return "Sans structure"
    if membership.profile_prescripteur:
        label = PrescriberProfile(membership.profile_prescripteur).label
    elif membership.profile_of:
        label = OfProfile(membership.profile_of).label
    else:
        label = "Bénéficiaire"
    return f"Référent de structure ({label})" if membership.is_referent else label


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

class _Random(random.Random):
    """``random.Random`` with cheaper ``randint`` and ``choice`` (one ``random()`` call
    each instead of rejection sampling on bits): millions of calls at large scales.
    Deterministic for a given seed, like its base class."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]


_fold = functools.lru_cache(maxsize=None)(fold)
_name_key = functools.lru_cache(maxsize=None)(name_key)


def _sqlite_instant(value: dt.datetime) -> str:
    """What ``UTCDateTime`` and SQLite's DATETIME store for an aware instant."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _luhn_complete(digits: str) -> str:
    """``digits`` followed by its Luhn check digit (SIREN, then SIRET)."""
    return digits + luhn.calc_check_digit(digits)


def _fr(number: float) -> str:
    """French thousands separator: 1 234 567."""
    return f"{number:,.0f}".replace(",", " ")


def _scale(value: float) -> str:
    return f"{value:g}".replace(".", ",")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".", ",")
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest:02d} s"


def _slug(value: str, limit: int = 40) -> str:
    return "-".join(fold(value).split())[:limit].strip("-")


def _de(name: str) -> str:
    """French "de" before a name: "de Pau", "d'Angoulême", "du Bouscat", "des Adjots"."""
    if name.startswith("Le "):
        return f"du {name[3:]}"
    if name.startswith("Les "):
        return f"des {name[4:]}"
    if fold(name[:1]) in ("a", "e", "i", "o", "u", "y", "h"):
        return f"d'{name}"
    return f"de {name}"


def _postal_code(code_insee: str) -> str:
    known = KNOWN_POSTAL_CODES.get(code_insee)
    if known:
        return known
    dept = code_insee[:2]
    # One of ~89 "bureaux distributeurs" of the département, ending in 0 like most codes.
    bureau = int(hashlib.sha256(code_insee.encode()).hexdigest()[:8], 16) % 88
    return f"{dept}{110 + bureau * 10:03d}"


def _nir(rng: random.Random, male: bool, birth: dt.date) -> str:
    dept = rng.choice(("16", "17", "19", "23", "24", "33", "40", "47", "64", "79", "86",
                       "87", "75", "69", "13", "31", "59"))
    body = (f"{1 if male else 2}{birth.year % 100:02d}{birth.month:02d}{dept}"
            f"{rng.randint(1, 800):03d}{rng.randint(1, 999):03d}")
    return body + f"{97 - int(body) % 97:02d}"


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------

class _Generator:
    def __init__(self, scale: float, seed: int, echo: Callable[[str], object]):
        self.scale, self.seed, self.echo = scale, seed, echo
        self.rng = _Random(seed)
        self.faker = Faker("fr_FR")
        self.faker.seed_instance(seed)
        self.now = clock.now()
        self.today = clock.today()
        self.counts: Counter[str] = Counter()
        self.timings: list[tuple[str, float]] = []
        self.is_postgres = db.engine.dialect.name == "postgresql"
        # Transition names, labels and side effects come from workflows/*.yaml.
        self.candidature_workflow = workflow.workflow_for(Candidature)
        self.formation_workflow = workflow.workflow_for(Formation)
        self._offsets: dict[dt.date, dt.timedelta] = {}
        self.next_ids = {table.name: (db.session.scalar(select(func.max(table.c.id))) or 0) + 1
                         for table in db.metadata.sorted_tables if "id" in table.c}
        self.emails: set[str] = set(db.session.scalars(select(User.email)))
        self.sirets: set[str] = set(db.session.scalars(select(Structure.siret)))
        female = list(FrenchPersonProvider.first_names_female) + list(EXTRA_FIRST_NAMES_F)
        male = list(FrenchPersonProvider.first_names_male) + list(EXTRA_FIRST_NAMES_M)
        self.first_names = {True: male, False: female}
        self.last_names = list(FrenchPersonProvider.last_names) + list(EXTRA_LAST_NAMES)
        self.password_hash = generate_password_hash(DEMO_PASSWORD)
        self._late_users: list[dict] = []
        self._late_memberships: list[dict] = []
        self._reference_counters: dict[str, int] = {}
        self.log_rows: list[dict] = []
        self._rendered: tuple = (None, None)  # (the last e-mail context, its bodies)
        self.message_rows: list[dict] = []

    # -- plumbing ------------------------------------------------------------------------
    def ids(self, model, count: int) -> range:
        name = model.__tablename__
        start = self.next_ids[name]
        self.next_ids[name] = start + count
        return range(start, start + count)

    def insert(self, model, rows: list[dict]) -> None:
        """Bulk insert, grouping rows by their key set (omitted keys take defaults)."""
        if not rows:
            return
        table = model.__table__
        groups: dict[tuple, list[dict]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        for keys, batch_rows in groups.items():
            if self.is_postgres:
                for start in range(0, len(batch_rows), CHUNK):
                    db.session.execute(insert(table), batch_rows[start:start + CHUNK])
            else:
                self._insert_sqlite(table, keys, batch_rows)
        self.counts[table.name] += len(rows)

    def _insert_sqlite(self, table, keys: tuple, rows: list[dict]) -> None:
        """SQLite fast path: the DBAPI's executemany on tuples converted here exactly as
        SQLAlchemy's bind processing would (UTC instants as naive "YYYY-MM-DD
        HH:MM:SS.ffffff", ISO dates, JSON text), without its per-row overhead."""
        columns = [table.c[key] for key in keys]
        # Columns left out take their scalar default (e.g. ``version``); a callable
        # default (``extra``, timestamps) must be given by the caller.
        left_out = [c for c in table.columns if c.name not in keys and c.default is not None]
        if any(not c.default.is_scalar for c in left_out):
            raise ValueError(f"{table.name} : valeurs manquantes pour "
                             f"{[c.name for c in left_out if not c.default.is_scalar]}")
        defaults = {c.name: c.default.arg for c in left_out}
        names = list(keys) + list(defaults)
        converters = []
        for position, column in enumerate(columns):
            kind = column.type
            if isinstance(kind, UTCDateTime):
                converters.append((position, _sqlite_instant))
            elif isinstance(kind, JSON):
                converters.append((position, json.dumps))
            elif isinstance(kind, DateTime):
                converters.append((position, lambda v: v.isoformat(" ", "microseconds")))
            elif isinstance(kind, Date):
                converters.append((position, dt.date.isoformat))
        getter = operator.itemgetter(*keys)
        tail = list(defaults.values())
        single = len(keys) == 1
        column_list = ", ".join('"%s"' % name for name in names)
        placeholders = ", ".join("?" for _ in names)
        sql = f'INSERT INTO "{table.name}" ({column_list}) VALUES ({placeholders})'
        connection = db.session.connection()
        for start in range(0, len(rows), CHUNK):
            params = []
            for row in rows[start:start + CHUNK]:
                values = [getter(row)] if single else list(getter(row))
                for position, convert in converters:
                    value = values[position]
                    if value is not None:
                        values[position] = convert(value)
                params.append(tuple(values + tail if tail else values))
            connection.exec_driver_sql(sql, params)

    def step(self, label: str, function: Callable[[], object]) -> None:
        started = time.perf_counter()
        function()
        db.session.commit()
        elapsed = time.perf_counter() - started
        self.timings.append((label, elapsed))
        self.echo(f"  {label} : terminé en {_duration(elapsed)}")

    def instant(self, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        """``day`` at ``hour``:``minute`` Paris time, as an aware UTC datetime."""
        offset = self._offsets.get(day)
        if offset is None:
            offset = dt.datetime(day.year, day.month, day.day, 12,
                                 tzinfo=clock.PARIS).utcoffset()
            self._offsets[day] = offset
        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - offset

    def working_instant(self, day: dt.date) -> dt.datetime:
        """A plausible instant of office activity on ``day`` (Mon–Fri, 08:00–19:59 Paris),
        moved back to the previous working day if needed, never after ``now``."""
        rng = self.rng
        weekday = day.weekday()
        if weekday >= 5:  # a weekend day becomes any working day of the same week
            day -= dt.timedelta(days=weekday - rng.randint(0, 4))
        if day >= self.today:
            day = self.today
            local = clock.to_local(self.now)
            while day.weekday() >= 5 or (day == self.today and local.hour < 9):
                day -= DAY
            if day == self.today:
                hour = rng.randint(8, min(19, local.hour - 1))
                return self.instant(day, hour, rng.randint(0, 59))
        return self.instant(day, rng.randint(8, 19), rng.randint(0, 59))

    def later_working(self, after: dt.datetime, max_days: int,
                      limit_day: dt.date) -> dt.datetime:
        """An office-hours instant 0 to ``max_days`` days after ``after``, on or before
        ``limit_day`` when possible, never before ``after`` nor after ``now``."""
        start = clock.to_local(after).date()
        day = min(start + dt.timedelta(days=self.rng.randint(0, max_days)), limit_day)
        value = self.working_instant(max(day, start))
        if value <= after:
            value = min(self.now, after + dt.timedelta(minutes=self.rng.randint(10, 120)))
        return max(value, after)

    def random_day(self, start: dt.date, end: dt.date) -> dt.date:
        if end <= start:
            return start
        return start + dt.timedelta(days=self.rng.randint(0, (end - start).days))

    def person(self) -> tuple[bool, str, str]:
        rng = self.rng
        male = rng.random() < 0.5
        prenom = rng.choice(self.first_names[male])
        if rng.random() < 0.04:  # prénom composé
            other = rng.choice(self.first_names[male])
            if other != prenom and "-" not in prenom + other:
                prenom = f"{prenom}-{other}"
        nom = rng.choice(self.last_names)
        if rng.random() < 0.05:  # nom composé
            other = rng.choice(self.last_names)
            if other != nom and " " not in nom + other:
                nom = f"{nom}-{other}"
        return male, prenom, nom

    def unique_email(self, prenom: str, nom: str, domain: str) -> str:
        base = f"{fold(prenom).replace(' ', '-')}.{fold(nom).replace(' ', '-')}"
        email, n = f"{base}@{domain}", 1
        while email in self.emails:
            n += 1
            email = f"{base}{n}@{domain}"
        self.emails.add(email)
        return email

    def siret(self, siren: str | None = None) -> str:
        rng = self.rng
        while True:
            if siren is None:
                head = f"{rng.choice('123456789')}{rng.randint(0, 9_999_999):07d}"
                current = _luhn_complete(head)
                if current.startswith("356000000"):
                    continue
            else:
                current = siren
            value = _luhn_complete(f"{current}{rng.randint(1, 9999):04d}")
            if value not in self.sirets:
                self.sirets.add(value)
                return value

    def phone(self, mobile: bool, dept: str | None = None) -> str:
        rng = self.rng
        if mobile:
            prefix = rng.choice(("06", "07"))
        else:
            prefix = "05"
        groups = [f"{rng.randint(0, 99):02d}" for _ in range(4)]
        if not mobile:
            groups[0] = {"33": "56", "64": "59", "40": "58", "47": "53", "24": "53",
                         "87": "55", "19": "55", "23": "55", "16": "45", "17": "46",
                         "79": "49", "86": "49"}.get(dept or "", groups[0])
        return " ".join([prefix] + groups)

    # -- orchestration -------------------------------------------------------------------
    def run(self) -> str:
        started = time.perf_counter()
        scale = self.scale
        self.n_of = max(4, round(150 * scale))
        self.n_prescribers = max(3, round(100 * scale))
        self.n_formations = max(12, round(2000 * scale))
        self.n_candidates = max(60, round(20000 * scale))
        if not self.is_postgres:
            # A large page cache while loading: the candidature indexes are filled in
            # random order, which thrashes SQLite's default 2 MB cache at large scales.
            # (Per connection; the session keeps the same pooled connection.)
            self.previous_cache = db.session.execute(text("PRAGMA cache_size")).scalar()
            db.session.execute(text("PRAGMA cache_size = -524288"))  # 512 MiB
        self.echo(f"Génération des données de démonstration (échelle {_scale(scale)}, graine "
                  f"{self.seed}, instant de référence "
                  f"{clock.format_local(self.now)} heure de Paris)…")
        # The word and search indexes are dropped while loading and built again at the end
        # from the loaded rows (one INSERT … SELECT or CREATE INDEX each): maintained row
        # by row by their triggers, they doubled the load at scale 25.
        self.step("Index de recherche suspendus", self.suspend_indexes)
        self.step("Communes", self.load_communes)
        self.step("Certifications", self.make_certifications)
        self.step("Structures", self.make_structures)
        self.step("Utilisateurs et rattachements", self.make_users)
        self.step("Demandes, habilitations et délégations", self.make_requests)
        self.step("Formations", self.make_formations)
        self.step("Sessions et points d'entrée", self.make_sessions)
        self.step("Candidats et candidatures", self.make_candidatures)
        self.step("Journal, courriels et tâches", self.make_misc)
        self.step("Index de recherche reconstruits", self.rebuild_indexes)
        if self.is_postgres:
            self.step("Séquences PostgreSQL", self.reset_sequences)
        else:
            db.session.execute(text(f"PRAGMA cache_size = {int(self.previous_cache)}"))
            db.session.commit()
        self.step("Statistiques du planificateur (ANALYZE, VACUUM)", self.analyze)
        total = time.perf_counter() - started
        return self.report(total)

    def report(self, total: float) -> str:
        labels = (
            ("commune", "Communes"), ("certification", "Certifications"),
            ("structure", "Structures"), ("user_account", "Utilisateurs"),
            ("membership", "Rattachements"), ("account_request", "Demandes de compte"),
            ("affiliation_request", "Demandes de rattachement"),
            ("referencing_request", "Demandes de référencement"),
            ("habilitation", "Habilitations"), ("delegation", "Délégations"),
            ("token", "Jetons"), ("formation", "Formations"), ("session", "Sessions"),
            ("entry_point", "Points d'entrée"), ("candidate", "Candidats"),
            ("candidature", "Candidatures"), ("transition_log", "Journal des transitions"),
            ("outbound_message", "Courriels et messages hub"),
            ("job_run", "Exécutions des tâches"))
        width = max(len(label) for _, label in labels)
        lines = [f"Données de démonstration chargées en {_duration(total)} "
                 f"(échelle {_scale(self.scale)}, graine {self.seed}) :"]
        for table, label in labels:
            lines.append(f"  {label.ljust(width)}  {_fr(self.counts[table]).rjust(10)}")
        lines.append(f"  {'Total'.ljust(width)}  {_fr(sum(self.counts.values())).rjust(10)}")
        lines.append("Durée par étape : " + " ; ".join(
            f"{label} {_duration(seconds)}" for label, seconds in self.timings))
        lines.append(f"Mot de passe de tous les comptes : {DEMO_PASSWORD} "
                     "(backoffice demo-accounts pour la liste des comptes de démonstration).")
        lines.append(DEMO_TOTP_LINE)
        return "\n".join(lines)

    # -- communes ------------------------------------------------------------------------
    def load_communes(self) -> None:
        existing = {code: (cid, cp, dept) for cid, code, cp, dept in db.session.execute(
            select(Commune.id, Commune.code_insee, Commune.code_postal, Commune.departement)
            .order_by(Commune.id))}
        rows = []
        with COMMUNES_CSV.open(encoding="utf-8", newline="") as handle:
            records = list(csv.DictReader(handle))
        new = [r for r in records if r["code_insee"] not in existing]
        for commune_id, record in zip(self.ids(Commune, len(new)), new):
            rows.append({"id": commune_id, "code_insee": record["code_insee"],
                         "code_postal": _postal_code(record["code_insee"]),
                         "nom": record["nom"], "departement": record["departement"]})
        self.insert(Commune, rows)
        self.echo(f"  {_fr(len(rows))} communes chargées ({_fr(len(existing))} déjà présentes)")
        # Every commune known to the database, in a deterministic order.
        self.communes = []  # (id, code_insee, code_postal, nom, departement)
        for cid, code, cp, nom, dept in db.session.execute(
                select(Commune.id, Commune.code_insee, Commune.code_postal, Commune.nom,
                       Commune.departement).order_by(Commune.id)):
            self.communes.append((cid, code, cp, nom, dept))
        self.commune_by_insee = {c[1]: c for c in self.communes}
        self.poles = [self.commune_by_insee[code] for code in POLES
                      if code in self.commune_by_insee]
        self.communes_by_dept: dict[str, list] = defaultdict(list)
        for commune in self.communes:
            self.communes_by_dept[commune[4]].append(commune)
        self.poles_by_dept: dict[str, list] = defaultdict(list)
        for commune in self.poles:
            self.poles_by_dept[commune[4]].append(commune)

    def pick_commune(self, dept: str | None = None, pole_share: float = 0.45):
        rng = self.rng
        if dept is None:
            if rng.random() < pole_share:
                return rng.choice(self.poles)
            return rng.choice(self.communes)
        if rng.random() < pole_share and self.poles_by_dept.get(dept):
            return rng.choice(self.poles_by_dept[dept])
        return rng.choice(self.communes_by_dept.get(dept) or self.communes)

    # -- certifications ------------------------------------------------------------------
    def make_certifications(self) -> None:
        rng = self.rng
        target = max(30, round(300 * self.scale))
        base = list(CERTIFICATIONS)
        if target < len(base):
            chosen = sorted(rng.sample(range(len(base)), target))
            entries = [(base[i], None) for i in chosen]
        else:
            entries = [(entry, None) for entry in base]
            # Older versions of the same certification (distinct Certif Info codes),
            # mostly no longer active: Certif Info keeps every version.
            extra = min(target - len(base), len(base))
            for i in sorted(rng.sample(range(len(base)), extra)):
                entries.append((base[i], rng.choice((2012, 2015, 2017, 2019))))
        existing = set(db.session.scalars(select(Certification.code_certifinfo)))
        codes = []
        for code in rng.sample(range(10_000, 130_000), len(entries) + len(existing)):
            if str(code) not in existing:
                codes.append(str(code))
        rows = []
        self.certifications = []  # (id, label, type, level, apprentissage, domain, active)
        self.certs_by_domain: dict[str, list] = defaultdict(list)
        for cert_id, (entry, version), code in zip(self.ids(Certification, len(entries)),
                                                   entries, codes):
            kind, specialty, level, apprentissage, domain = entry
            prefix = CERT_TYPES[kind][0]
            label = f"{prefix} {specialty}".strip()
            active = True
            if version is not None:
                label = f"{label} (version {version})"
                active = rng.random() < 0.25
            elif rng.random() < 0.03:
                active = False
            rows.append({"id": cert_id, "code_certifinfo": code, "intitule": label,
                         "niveau": LEVELS[level], "ouverte_apprentissage": apprentissage,
                         "active": active})
            cert = (cert_id, label, kind, level, apprentissage, domain, active, specialty)
            self.certifications.append(cert)
            if active:
                self.certs_by_domain[domain].append(cert)
        self.active_certs = [c for c in self.certifications if c[6]]
        self.inactive_certs = [c for c in self.certifications if not c[6]]
        self.insert(Certification, rows)

    # -- structures ----------------------------------------------------------------------
    def make_structures(self) -> None:
        rng, faker = self.rng, self.faker
        rows = []
        self.of_structures = []       # dicts: id, siret, domains, dept, commune, ...
        self.prescriber_structures = []
        self.structures = {}
        network_sirens: dict[str, str] = {}
        used_names: Counter[str] = Counter()
        self.street_pool = [faker.street_address() for _ in range(600)]

        def unique_name(name: str) -> str:
            used_names[name] += 1
            return name if used_names[name] == 1 else f"{name} (site {used_names[name]})"

        def add(kind, name, sigle, siret, commune, prescriber_type=None, domains=(),
                autre_siren=False, demo=False):
            structure_id = self.ids(Structure, 1)[0]
            created = self.instant(self.today - dt.timedelta(days=rng.randint(400, 1400)),
                                   rng.randint(8, 18), rng.randint(0, 59))
            row = {"id": structure_id, "raison_sociale": name[:200], "sigle": sigle,
                   "siret": siret, "siren": siret[:9], "kind": kind,
                   "prescriber_type": prescriber_type, "adresse": rng.choice(self.street_pool),
                   "code_postal": commune[2], "commune_id": commune[0],
                   "departement": commune[4], "autorisee_autre_siren": autre_siren,
                   "active": demo or rng.random() > 0.02, "created_at": created,
                   "updated_at": created}
            rows.append(row)
            info = {"id": structure_id, "name": row["raison_sociale"], "siret": siret,
                    "kind": kind, "type": prescriber_type, "domains": tuple(domains),
                    "dept": commune[4], "commune": commune, "address": row["adresse"],
                    "slug": _slug(row["sigle"] or row["raison_sociale"], 30),
                    "autre_siren": autre_siren,
                    "created": created, "users": []}
            self.structures[structure_id] = info
            return info

        # OF structures; the first one is the demo OF (Afpa Bordeaux, several formations).
        for index in range(self.n_of):
            if index == 0:
                network = OF_NETWORKS[0]
                commune = self.commune_by_insee.get(BORDEAUX) or self.communes[0]
            else:
                network = rng.choice(OF_NETWORKS)
                rural = network[1] in ("MFR", "CFPPA", "LP")
                commune = self.pick_commune(pole_share=0.25 if rural else 0.7)
            pattern, sigle, domains, shared = network
            dept = commune[4]
            name = pattern.format(
                ville=commune[3], de_ville=_de(commune[3]),
                dept=DEPARTEMENTS_NOUVELLE_AQUITAINE[dept],
                secteur=rng.choice(GRETA_SECTEURS), personne=rng.choice(LYCEE_NAMES),
                nom=faker.last_name())
            if domains is None:
                domains = tuple(rng.sample(sorted(DOMAINS), rng.randint(2, 3)))
            if shared:
                siren = network_sirens.get(pattern)
                if siren is None:
                    siren = self.siret()[:9]
                    network_sirens[pattern] = siren
                siret = self.siret(siren)
            else:
                siret = self.siret()
            kind = StructureKind.MIXTE if index > 0 and rng.random() < 0.05 \
                else StructureKind.ORGANISME_FORMATION
            info = add(kind, unique_name(name), sigle, siret, commune,
                       PrescriberType.AUTRE if kind == StructureKind.MIXTE else None,
                       domains, autre_siren=index > 0 and rng.random() < 0.08,
                       demo=index == 0)
            self.of_structures.append(info)
            if kind == StructureKind.MIXTE:
                self.prescriber_structures.append(info)

        # Prescriber structures; the first one is the demo France Travail agency.
        france_travail_siren = self.siret()[:9]
        kinds = [k for k in PRESCRIBER_KINDS]
        weights = [k[1] for k in kinds]
        for index in range(self.n_prescribers):
            if index == 0:
                ptype, _w, pattern, sigle = kinds[0]
                commune = self.commune_by_insee.get(BORDEAUX) or self.communes[0]
            else:
                ptype, _w, pattern, sigle = rng.choices(kinds, weights)[0]
                commune = self.pick_commune(pole_share=0.6)
            dept = commune[4]
            ville = commune[3]
            if ptype == PrescriberType.FRANCE_TRAVAIL and commune[1] == BORDEAUX:
                ville = BORDEAUX_AGENCIES[0] if index == 0 else rng.choice(BORDEAUX_AGENCIES)
            name = pattern.format(
                ville=ville, de_ville=_de(commune[3]),
                dept=DEPARTEMENTS_NOUVELLE_AQUITAINE[dept],
                territoire=rng.choice((_de(commune[3]), f"du pays {_de(commune[3])}",
                                       f"{DEPARTEMENTS_NOUVELLE_AQUITAINE[dept]}",
                                       f"de l'agglomération {_de(commune[3])}")),
                autre=rng.choice(AUTRES_PRESCRIPTEURS).format(
                    de_ville=_de(commune[3]), ville=commune[3],
                    dept=DEPARTEMENTS_NOUVELLE_AQUITAINE[dept]))
            if ptype == PrescriberType.FRANCE_TRAVAIL:
                siret = self.siret(france_travail_siren)
            else:
                siret = self.siret()
            info = add(StructureKind.PRESCRIPTEUR, unique_name(name), sigle, siret, commune,
                       ptype, demo=index == 0)
            self.prescriber_structures.append(info)
        self.insert(Structure, rows)
        self.demo_of = self.of_structures[0]
        self.demo_prescriber = next(s for s in self.prescriber_structures
                                    if s["kind"] == StructureKind.PRESCRIPTEUR)

    # -- users and memberships -----------------------------------------------------------
    def make_users(self) -> None:
        rng = self.rng
        users, memberships = [], []
        self.users = {}  # id → dict(email, state, nom, prenom, created)

        def add_user(prenom, nom, email, *, state=UserState.ACTIF, staff_role=None,
                     fonction=None, created=None, mobile=False, dept=None):
            user_id = self.ids(User, 1)[0]
            created = created or self.instant(
                self.today - dt.timedelta(days=rng.randint(30, 900)), rng.randint(8, 18),
                rng.randint(0, 59))
            last_login = None
            if state in (UserState.ACTIF, UserState.EN_ATTENTE_VALIDATION) and \
                    rng.random() < 0.8:
                last_login = max(created, self.working_instant(self.random_day(
                    clock.to_local(created).date(), self.today)))
            users.append({
                "id": user_id, "email": email, "password_hash": self.password_hash,
                "nom": nom, "prenom": prenom, "fonction": fonction,
                "telephone": self.phone(mobile, dept), "state": state,
                "staff_role": staff_role, "last_login_at": last_login,
                "created_at": created,
                "updated_at": last_login or created})
            self.users[user_id] = {"email": email, "state": state, "nom": nom,
                                   "prenom": prenom, "created": created}
            return user_id

        def add_membership(user_id, structure, *, referent=False, profile_of=None,
                           profile_prescripteur=None, profile_parcourspro=None,
                           affiliation=False):
            membership_id = self.ids(Membership, 1)[0]
            created = max(self.users[user_id]["created"], structure["created"])
            memberships.append({
                "id": membership_id, "user_id": user_id, "structure_id": structure["id"],
                "is_referent": referent, "profile_of": profile_of,
                "profile_prescripteur": profile_prescripteur,
                "profile_parcourspro": profile_parcourspro, "beneficiaire": True,
                "created_at": created, "updated_at": created})
            structure["users"].append({"user": user_id, "referent": referent,
                                       "of": profile_of, "presc": profile_prescripteur,
                                       "state": self.users[user_id]["state"],
                                       "affiliation": affiliation})

        # Staff accounts (Cap Métiers), then the demo accounts of the two demo structures.
        staff_created = self.instant(self.today - dt.timedelta(days=700), 9)
        self.staff = {}
        for email, prenom, nom, role, fonction in (
                ("admin@demo.fr", "Nathalie", "Lacoste", StaffRole.ADMIN,
                 "Administratrice de la plateforme"),
                ("moderateur@demo.fr", "Julien", "Larrieu", StaffRole.MODERATEUR,
                 "Chargé de modération de l'offre"),
                ("regles@demo.fr", "Sophie", "Etcheverry", StaffRole.RESPONSABLE_REGLES,
                 "Responsable des règles de gestion")):
            self.emails.add(email)
            self.staff[role] = add_user(prenom, nom, email, staff_role=role, fonction=fonction,
                                        created=staff_created, dept="33")
            users[-1].update(totp_secret_encrypted=crypto.mfa_fernet().encrypt(
                DEMO_TOTP_SECRET.encode()).decode(), mfa_enabled_at=staff_created)
        extra_moderators = [add_user(p, n, self.unique_email(p, n, "cap-metiers.example"),
                                     staff_role=StaffRole.MODERATEUR, fonction=f,
                                     created=staff_created, dept="33")
                            for p, n, f in (("Claire", "Dubreuil",
                                             "Chargée de modération de l'offre"),
                                            ("Karim", "Benali",
                                             "Chargé de modération de l'offre"))]
        self.moderators = [self.staff[StaffRole.MODERATEUR], *extra_moderators]

        demo_users = (
            (self.demo_of, "referent@demo.fr", "Isabelle", "Garrigue", "Directrice du centre",
             dict(referent=True, profile_of=OfProfile.CATALOGUE,
                  profile_parcourspro=ParcoursProProfile.PRESTATAIRE)),
            (self.demo_of, "of@demo.fr", "Marc", "Duprat", "Responsable des inscriptions",
             dict(profile_of=OfProfile.GENERAL)),
            (self.demo_prescriber, "prescripteur3@demo.fr", "Hélène", "Castaing",
             "Responsable d'équipe", dict(referent=True, profile_prescripteur=PrescriberProfile.N3)),
            (self.demo_prescriber, "prescripteur2@demo.fr", "Thomas", "Bernadet",
             "Conseiller emploi formation", dict(profile_prescripteur=PrescriberProfile.N2)),
            (self.demo_prescriber, "prescripteur1@demo.fr", "Léa", "Dufau",
             "Conseillère emploi", dict(profile_prescripteur=PrescriberProfile.N1)),
        )
        for structure, email, prenom, nom, fonction, rights in demo_users:
            self.emails.add(email)
            user_id = add_user(prenom, nom, email, fonction=fonction, dept=structure["dept"],
                               created=max(structure["created"], staff_created))
            add_membership(user_id, structure, **rights)

        # Generated users: a few per structure, the first one is the référent.
        user_states = [UserState.ACTIF] * 86 + [UserState.A_ACTIVER] * 4 + \
            [UserState.EN_ATTENTE_VALIDATION] * 5 + [UserState.REFUSE] * 2 + \
            [UserState.DESACTIVE] * 3
        all_structures = sorted(self.structures.values(), key=lambda s: s["id"])
        for structure in all_structures:
            is_demo = structure is self.demo_of or structure is self.demo_prescriber
            is_of = structure["kind"] != StructureKind.PRESCRIPTEUR
            is_presc = structure["kind"] != StructureKind.ORGANISME_FORMATION
            count = rng.choice((1, 2, 2, 3, 3, 4)) if not is_demo else 3
            if structure["type"] == PrescriberType.FRANCE_TRAVAIL:
                count += 2
            domain = ("francetravail.example" if structure["type"] ==
                      PrescriberType.FRANCE_TRAVAIL else f"{structure['slug']}.example")
            for position in range(count):
                male, prenom, nom = self.person()
                referent = position == 0 and not structure["users"]
                state = UserState.ACTIF if referent else rng.choice(user_states)
                functions = OF_USER_FUNCTIONS if is_of else PRESCRIBER_USER_FUNCTIONS
                user_id = add_user(prenom, nom, self.unique_email(prenom, nom, domain),
                                   state=state, fonction=rng.choice(functions)[0 if male else 1],
                                   dept=structure["dept"], mobile=rng.random() < 0.2,
                                   created=structure["created"] + dt.timedelta(
                                       days=rng.randint(0, 300)))
                rights = {"referent": referent}
                if state in (UserState.A_ACTIVER, UserState.EN_ATTENTE_VALIDATION,
                             UserState.REFUSE):
                    pass  # no management profile before validation
                else:
                    if is_of:
                        rights["profile_of"] = (OfProfile.GENERAL if referent else rng.choice(
                            (OfProfile.CATALOGUE, OfProfile.PREINSCRIPTION, OfProfile.GENERAL)))
                    if is_presc:
                        rights["profile_prescripteur"] = rng.choices(
                            (PrescriberProfile.N1, PrescriberProfile.N2, PrescriberProfile.N3),
                            (35, 45, 20))[0] if not referent else PrescriberProfile.N3
                    if rng.random() < 0.1:
                        rights["profile_parcourspro"] = (ParcoursProProfile.PRESTATAIRE
                                                         if is_of and rng.random() < 0.5
                                                         else ParcoursProProfile.EMPLOYEUR)
                add_membership(user_id, structure, **rights)
        # Some users belong to several structures (validated affiliation requests).
        self.affiliations = []
        candidates = [s for s in all_structures if s["users"]]
        for _ in range(max(2, len(candidates) // 12)):
            source, target = rng.sample(candidates, 2)
            member = rng.choice(source["users"])
            if member["state"] != UserState.ACTIF or any(
                    m["user"] == member["user"] for m in target["users"]):
                continue
            rights = {}
            if target["kind"] != StructureKind.PRESCRIPTEUR:
                rights["profile_of"] = OfProfile.CATALOGUE
            if target["kind"] != StructureKind.ORGANISME_FORMATION:
                rights["profile_prescripteur"] = PrescriberProfile.N2
            add_membership(member["user"], target, affiliation=True, **rights)
            self.affiliations.append((member["user"], target))
        self.insert(User, users)
        self.insert(Membership, memberships)

        # Lookups used by the next steps.
        self.of_catalogue_users = {}   # structure id → users who can create formations
        self.of_avis_users = {}        # structure id → users who give avis
        self.prescribers = {}          # structure id → {level: [user ids]}
        for structure in all_structures:
            active = [m for m in structure["users"] if m["state"] == UserState.ACTIF]
            self.of_catalogue_users[structure["id"]] = [
                m["user"] for m in active
                if m["of"] in (OfProfile.CATALOGUE, OfProfile.GENERAL)] or \
                [m["user"] for m in structure["users"][:1]]
            self.of_avis_users[structure["id"]] = [
                m["user"] for m in active
                if m["of"] in (OfProfile.PREINSCRIPTION, OfProfile.GENERAL)] or \
                [m["user"] for m in structure["users"][:1]]
            levels = defaultdict(list)
            for m in active:
                if m["presc"]:
                    levels[int(m["presc"][-1])].append(m["user"])
            if levels:
                self.prescribers[structure["id"]] = dict(levels)
        self.prescriber_structures = [s for s in self.prescriber_structures
                                      if s["id"] in self.prescribers]

    # -- requests, habilitations, delegations, tokens -------------------------------------
    def make_requests(self) -> None:
        rng = self.rng
        account_requests, affiliation_requests, referencing = [], [], []
        habilitations, delegations, tokens = [], [], []
        moderators = self.moderators

        def decided(created, state, decider):
            if state == RequestState.EN_ATTENTE:
                return None, None, None
            at = min(self.now, created + dt.timedelta(hours=rng.randint(2, 240)))
            comment = None
            if state == RequestState.REFUSEE:
                comment = rng.choice(("Cette personne ne fait pas partie de la structure.",
                                      "Doublon d'une demande déjà validée.",
                                      "Merci d'utiliser votre adresse professionnelle."))
            return decider, at, comment

        states_cycle = [RequestState.EN_ATTENTE, RequestState.VALIDEE, RequestState.REFUSEE]
        for structure in sorted(self.structures.values(), key=lambda s: s["id"]):
            referent = next((m["user"] for m in structure["users"] if m["referent"]), None)
            for member in structure["users"]:
                if member["affiliation"]:
                    continue
                user = self.users[member["user"]]
                if user["email"].endswith("@demo.fr"):
                    state = RequestState.VALIDEE
                elif user["state"] in (UserState.A_ACTIVER, UserState.EN_ATTENTE_VALIDATION):
                    state = RequestState.EN_ATTENTE
                elif user["state"] == UserState.REFUSE:
                    state = RequestState.REFUSEE
                elif rng.random() < 0.5:
                    state = RequestState.VALIDEE
                else:
                    continue
                first = member["referent"]
                decider = rng.choice(moderators) if first or referent is None else referent
                created = user["created"]
                by, at, comment = decided(created, state, decider)
                account_requests.append({
                    "id": self.ids(AccountRequest, 1)[0], "user_id": member["user"],
                    "structure_id": structure["id"], "state": state,
                    "message": rng.choice(REQUEST_MESSAGES), "decided_by_id": by,
                    "decided_at": at, "decision_comment": comment, "created_at": created,
                    "updated_at": at or created})
                if user["state"] == UserState.A_ACTIVER:
                    secret = hashlib.sha256(f"{self.seed}:activation:{member['user']}"
                                            .encode()).hexdigest()
                    tokens.append({"id": self.ids(Token, 1)[0],
                                   "purpose": TokenPurpose.ACTIVATION, "token_hash": secret,
                                   "user_id": member["user"], "payload": {},
                                   "created_at": created,
                                   "expires_at": created + dt.timedelta(days=7),
                                   "used_at": None})
        # Pending requests for the demo structures (their référents validate them).
        for structure in (self.demo_of, self.demo_prescriber):
            for state in states_cycle:
                male, prenom, nom = self.person()
                created = self.working_instant(self.today - dt.timedelta(
                    days=rng.randint(1, 20)))
                user_id = self.ids(User, 1)[0]
                user_state = {RequestState.EN_ATTENTE: UserState.EN_ATTENTE_VALIDATION,
                              RequestState.VALIDEE: UserState.ACTIF,
                              RequestState.REFUSEE: UserState.REFUSE}[state]
                domain = ("francetravail.example" if structure is self.demo_prescriber
                          else f"{structure['slug']}.example")
                email = self.unique_email(prenom, nom, domain)
                self._late_users.append({
                    "id": user_id, "email": email, "password_hash": self.password_hash,
                    "nom": nom, "prenom": prenom, "fonction": None,
                    "telephone": self.phone(True), "state": user_state, "staff_role": None,
                    "last_login_at": None, "created_at": created,
                    "updated_at": created})
                referent = next(m["user"] for m in structure["users"] if m["referent"])
                by, at, comment = decided(created, state, referent)
                account_requests.append({
                    "id": self.ids(AccountRequest, 1)[0], "user_id": user_id,
                    "structure_id": structure["id"], "state": state,
                    "message": REQUEST_MESSAGES[0], "decided_by_id": by, "decided_at": at,
                    "decision_comment": comment, "created_at": created,
                    "updated_at": at or created})
                if state == RequestState.VALIDEE:
                    self._late_memberships.append({
                        "id": self.ids(Membership, 1)[0], "user_id": user_id,
                        "structure_id": structure["id"], "is_referent": False,
                        "profile_of": OfProfile.PREINSCRIPTION
                        if structure is self.demo_of else None,
                        "profile_prescripteur": PrescriberProfile.N1
                        if structure is self.demo_prescriber else None,
                        "profile_parcourspro": None, "beneficiaire": True,
                        "created_at": at, "updated_at": at})
        # Affiliation requests: validated for every extra membership, plus pending/refused.
        for user_id, structure in self.affiliations:
            referent = next((m["user"] for m in structure["users"] if m["referent"]), None)
            created = max(self.users[user_id]["created"], structure["created"])
            by, at, comment = decided(created, RequestState.VALIDEE, referent)
            affiliation_requests.append({
                "id": self.ids(AffiliationRequest, 1)[0], "user_id": user_id,
                "structure_id": structure["id"], "state": RequestState.VALIDEE,
                "message": "Je travaille aussi pour cette structure.", "decided_by_id": by,
                "decided_at": at, "decision_comment": None, "created_at": created,
                "updated_at": at})
        active_users = [(uid, s) for s in self.structures.values() for m in s["users"]
                        if m["state"] == UserState.ACTIF and
                        (uid := m["user"]) not in self.staff.values()]
        active_users.sort(key=lambda pair: pair[0])
        structures = sorted(self.structures.values(), key=lambda s: s["id"])
        for index in range(max(3, len(structures) // 8)):
            user_id, own = rng.choice(active_users)
            target = rng.choice(structures)
            if target is own or any(m["user"] == user_id for m in target["users"]):
                continue
            state = (RequestState.EN_ATTENTE, RequestState.REFUSEE)[index % 2]
            referent = next((m["user"] for m in target["users"] if m["referent"]), None)
            created = self.working_instant(self.today - dt.timedelta(days=rng.randint(1, 60)))
            by, at, comment = decided(created, state, referent)
            affiliation_requests.append({
                "id": self.ids(AffiliationRequest, 1)[0], "user_id": user_id,
                "structure_id": target["id"], "state": state,
                "message": "Je souhaite être rattaché(e) à cette structure.",
                "decided_by_id": by, "decided_at": at, "decision_comment": comment,
                "created_at": created, "updated_at": at or created})
        # Referencing requests ("ma structure n'est pas dans la liste").
        for index in range(max(3, round(20 * self.scale))):
            state = states_cycle[index % 3]
            commune = self.pick_commune()
            kind = rng.choice((StructureKind.ORGANISME_FORMATION, StructureKind.PRESCRIPTEUR))
            ptype = PrescriberType.AUTRE if kind == StructureKind.PRESCRIPTEUR else None
            requester, own = rng.choice(active_users)
            created = self.working_instant(self.today - dt.timedelta(days=rng.randint(1, 90)))
            by, at, comment = decided(created, state, rng.choice(moderators))
            structure_id = None
            if state == RequestState.VALIDEE:
                match = rng.choice(self.of_structures if kind == StructureKind.ORGANISME_FORMATION
                                   else self.prescriber_structures)
                name, siret, structure_id = match["name"], match["siret"], match["id"]
            else:
                name = (f"{self.faker.last_name()} Formation" if ptype is None
                        else f"Association d'insertion {commune[3]}")
                siret = self.siret()
            referencing.append({
                "id": self.ids(ReferencingRequest, 1)[0], "requester_id": requester,
                "raison_sociale": name, "sigle": None, "siret": siret, "kind": kind,
                "prescriber_type": ptype, "adresse": rng.choice(self.street_pool),
                "code_postal": commune[2], "commune_nom": commune[3], "state": state,
                "structure_id": structure_id, "decided_by_id": by, "decided_at": at,
                "decision_comment": comment, "created_at": created,
                "updated_at": at or created})
        # Habilitations (Mon Activité Formation) and delegations on OF SIRETs.
        hab_states = list(HabilitationState)
        del_states = list(DelegationState)
        of_sorted = sorted(self.of_structures, key=lambda s: s["id"])
        for index, structure in enumerate(of_sorted[:max(3, len(of_sorted) // 3)]):
            members = [m for m in structure["users"] if m["state"] == UserState.ACTIF]
            if not members:
                continue
            gestionnaire = members[0]["user"]
            created = structure["created"] + dt.timedelta(days=rng.randint(1, 60))
            habilitations.append({
                "id": self.ids(Habilitation, 1)[0], "siret": structure["siret"],
                "user_id": gestionnaire, "role": HabilitationRole.GESTIONNAIRE,
                "state": HabilitationState.ACTIVE, "decided_by_id": None,
                "decided_at": created, "created_at": created, "updated_at": created})
            for member in members[1:]:
                state = hab_states[(index + len(habilitations)) % len(hab_states)]
                asked = created + dt.timedelta(days=rng.randint(1, 200))
                asked = min(asked, self.now)
                at = None if state == HabilitationState.DEMANDEE else min(
                    self.now, asked + dt.timedelta(days=rng.randint(1, 10)))
                habilitations.append({
                    "id": self.ids(Habilitation, 1)[0], "siret": structure["siret"],
                    "user_id": member["user"], "role": HabilitationRole.DECLARANT,
                    "state": state,
                    "decided_by_id": None if at is None else gestionnaire,
                    "decided_at": at, "created_at": asked, "updated_at": at or asked})
            if index % 2 == 0:
                state = del_states[(index // 2) % len(del_states)]
                tiers = rng.choice(of_sorted)
                male, prenom, nom = self.person()
                granted = min(self.now, created + dt.timedelta(days=rng.randint(10, 300)))
                end_date = None
                if state == DelegationState.EXPIREE:
                    end_date = self.today - dt.timedelta(days=rng.randint(1, 60))
                elif rng.random() < 0.6:
                    end_date = self.today + dt.timedelta(days=rng.randint(30, 365))
                accepted = state in (DelegationState.ACTIVE, DelegationState.REVOQUEE,
                                     DelegationState.EXPIREE)
                accepted_at = min(self.now, granted + dt.timedelta(days=2)) if accepted else None
                ended_at = None
                if state == DelegationState.EXPIREE:
                    ended_at = self.instant(end_date + DAY, 2)
                elif state in (DelegationState.REVOQUEE, DelegationState.REFUSEE):
                    ended_at = min(self.now, granted + dt.timedelta(days=20))
                tiers_user = next((m["user"] for m in tiers["users"]), None) \
                    if accepted else None
                delegations.append({
                    "id": self.ids(Delegation, 1)[0], "granted_by_id": gestionnaire,
                    "siret_etablissement": structure["siret"], "siret_tiers": tiers["siret"],
                    "email_tiers": self.users[tiers_user]["email"] if tiers_user else
                    f"{fold(prenom).replace(' ', '-')}.{fold(nom).replace(' ', '-')}"
                    f"@{tiers['slug']}.example",
                    "role": rng.choice(list(HabilitationRole)), "end_date": end_date,
                    "state": state, "accepted_by_id": tiers_user,
                    "accepted_at": accepted_at, "ended_at": ended_at,
                    "created_at": granted, "updated_at": ended_at or accepted_at or granted})
        self.insert(User, self._late_users)
        self.insert(Membership, self._late_memberships)
        self.insert(AccountRequest, account_requests)
        self.insert(AffiliationRequest, affiliation_requests)
        self.insert(ReferencingRequest, referencing)
        self.insert(Habilitation, habilitations)
        self.insert(Delegation, delegations)
        self.insert(Token, tokens)

    # -- formations ----------------------------------------------------------------------
    def make_formations(self) -> None:
        rng = self.rng
        n = self.n_formations
        of_list = self.of_structures
        # The demo OF owns a visible share of the offer.
        of_weights = list(itertools.accumulate(6 if s is self.demo_of else 1 for s in of_list))
        dispositifs, dispositif_weights = zip(*DISPOSITIF_WEIGHTS.items())
        states, state_weights = zip(*FORMATION_STATE_WEIGHTS.items())
        apprentice_certs = [c for c in self.active_certs if c[4]]
        marches: dict[str, list[str]] = {Dispositif.HSP: [], Dispositif.CONVENTIONNE_REGION: []}
        self.formations = []
        rows = []
        by_siren: dict[str, list] = defaultdict(list)
        for structure in of_list:
            by_siren[structure["siret"][:9]].append(structure)
        # Showcase formations of the demo OF, then one of each state, then at random.
        forced = [
            (self.demo_of, FormationState.VALIDEE, Dispositif.CONVENTIONNE_REGION, "showcase"),
            (self.demo_of, FormationState.VALIDEE, Dispositif.HSP, "hsp"),
            (self.demo_of, FormationState.VALIDEE, Dispositif.APPRENTISSAGE, "upcoming"),
            (self.demo_of, FormationState.EN_ATTENTE_MODERATION, Dispositif.NON_CONVENTIONNE,
             None),
        ] + [(None, state, None, None) for state in FormationState]
        for index, formation_id in enumerate(self.ids(Formation, n)):
            structure, state, dispositif, showcase = (forced[index] if index < len(forced)
                                                      else (None, None, None, None))
            structure = structure or rng.choices(of_list, cum_weights=of_weights)[0]
            state = state or rng.choices(states, state_weights)[0]
            dispositif = dispositif or rng.choices(dispositifs, dispositif_weights)[0]
            domain = rng.choice(structure["domains"])
            if dispositif == Dispositif.APPRENTISSAGE:
                pool = [c for c in self.certs_by_domain.get(domain, ()) if c[4]] or \
                    apprentice_certs
            else:
                pool = self.certs_by_domain.get(domain) or self.active_certs
            if state == FormationState.ARCHIVEE and self.inactive_certs and rng.random() < 0.3:
                pool = self.inactive_certs
            cert = rng.choice(pool)
            _cid, cert_label, kind, level, cert_apprentissage, cert_domain, _a, specialty = cert
            prep, months = CERT_TYPES[kind][1], CERT_TYPES[kind][2]
            # Access modalities (unknown in some drafts).
            if dispositif == Dispositif.APPRENTISSAGE:
                apprentissage, pro, continue_ = True, rng.random() < 0.5, rng.random() < 0.2
            elif dispositif == Dispositif.HSP:
                apprentissage, pro, continue_ = False, False, True
            else:
                continue_ = rng.random() < 0.85
                pro = rng.random() < 0.35
                apprentissage = cert_apprentissage and rng.random() < 0.2
                if not (continue_ or pro or apprentissage):
                    continue_ = True
            if state == FormationState.BROUILLON and rng.random() < 0.5:
                apprentissage = pro = continue_ = None
            annees = []
            if apprentissage:
                years = max(1, min(5, round(months / 12) or 1))
                annees = list(range(1, years + 1))
                if years > 1 and rng.random() < 0.3:
                    annees = annees[1:] if rng.random() < 0.5 else annees[:1]
            intitule = self.formation_title(cert_label, prep, months, specialty, dispositif,
                                            apprentissage, pro)
            sector, capabilities, modules = DOMAINS[cert_domain]
            objectif = self.objectif(cert_label, prep, level, sector, capabilities)
            programme = self.programme(modules, months)
            numero = None
            if dispositif in marches:
                pool_numbers = marches[dispositif]
                if not pool_numbers or rng.random() < 0.25:
                    tag = "HSP" if dispositif == Dispositif.HSP else "PRF"
                    pool_numbers.append(f"{rng.choice((2023, 2024, 2025))}-{tag}-"
                                        f"{rng.randint(1, 250):03d}-L{rng.randint(1, 40):02d}")
                numero = rng.choice(pool_numbers)
            formateur = structure
            if rng.random() < 0.12:
                siblings = [s for s in by_siren[structure["siret"][:9]] if s is not structure]
                if siblings:
                    formateur = rng.choice(siblings)
                elif structure["autre_siren"]:
                    formateur = rng.choice(of_list)
            # Dates: created, submitted, validated.
            age = rng.randint(20, 1100)
            created_day = self.today - dt.timedelta(days=age)
            created = self.instant(created_day, rng.randint(8, 19), rng.randint(0, 59))
            submitted = validated = None
            updated = created
            if state != FormationState.BROUILLON:
                submitted = min(self.now, created + dt.timedelta(hours=rng.randint(1, 24 * 10)))
                updated = submitted
            if state in PUBLISHED_FORMATION_STATES or state == FormationState.SUPPRIMEE:
                validated = min(self.now, submitted + dt.timedelta(hours=rng.randint(2, 24 * 8)))
                updated = validated
            if state in (FormationState.MODIFIEE, FormationState.ARCHIVEE,
                         FormationState.SUPPRIMEE, FormationState.COMPLEMENT_DEMANDE):
                updated = min(self.now, updated + dt.timedelta(days=rng.randint(1, 90)))
            if state == FormationState.MODIFIEE:
                submitted = updated  # the modification waits for moderation
            year = created_day.year
            reference = self.reference("formation", f"{year}", 12)
            row = {
                "id": formation_id, "reference": reference, "structure_id": structure["id"],
                "organisme_formateur_id": formateur["id"], "intitule": intitule,
                "objectif": objectif, "programme": programme, "certification_id": cert[0],
                "lien_web": f"https://www.{structure['slug']}.example/formations/"
                            f"{_slug(cert_label, 60)}-{reference[-4:]}",
                "financement": rng.choice(FINANCEMENTS[dispositif]),
                "dispositif": dispositif, "numero_marche": numero,
                "eligible_cpf": dispositif != Dispositif.HSP and rng.random() < 0.6,
                "modalite_formation_continue": continue_, "modalite_contrat_pro": pro,
                "modalite_apprentissage": apprentissage, "annees_cursus": annees,
                "state": state,
                "moderation_comment": rng.choice(COMMENTAIRES_MODERATION)
                if state == FormationState.COMPLEMENT_DEMANDE else None,
                "submitted_at": submitted, "validated_at": validated,
                "created_by_id": rng.choice(self.of_catalogue_users[structure["id"]]),
                "extra": {}, "created_at": created, "updated_at": updated}
            if state == FormationState.MODIFIEE:
                row["validated_snapshot"] = {"intitule": intitule, "objectif": objectif,
                                             "validated_at": validated.isoformat()}
                row["objectif"] = objectif + (" Nouveauté : un module de découverte des "
                                              "métiers ouvre le parcours.")
            rows.append(row)
            self.formations.append({
                "id": formation_id, "structure": structure["id"],
                "formateur": formateur, "state": state, "dispositif": dispositif,
                "months": months, "annees": annees, "created": created_day,
                "validated": validated, "showcase": showcase, "reference": reference,
                "submitted": submitted, "updated": updated, "intitule": row["intitule"],
                "comment": row["moderation_comment"]})
            if len(rows) >= CHUNK:
                self.insert(Formation, rows)
                rows = []
        self.insert(Formation, rows)

    def reference(self, kind: str, prefix: str, length: int) -> str:
        """A unique reference: ``prefix`` then a counter of the remaining digits, which
        starts at a plausible value and grows by small random gaps (numbers taken by
        other regions or deleted records), like a database-assigned number."""
        digits = length - len(prefix)
        key = f"{kind}:{prefix}"
        current = self._reference_counters.get(key)
        if current is None:
            current = self.rng.randint(10 ** (digits - 2), 3 * 10 ** (digits - 2))
        current += self.rng.randint(1, 3)
        self._reference_counters[key] = current
        return f"{prefix}{current:0{digits}d}"

    def formation_title(self, cert_label, prep, months, specialty, dispositif,
                        apprentissage, pro) -> str:
        rng = self.rng
        roll = rng.random()
        if dispositif == Dispositif.HSP:
            title = rng.choice((f"Parcours certifiant — {cert_label}",
                                f"Se qualifier : {cert_label}",
                                f"{cert_label} — parcours modulaire"))
        elif roll < 0.4:
            title = cert_label
        elif roll < 0.55:
            title = f"Préparation {prep} {cert_label}"
        elif roll < 0.65 and (apprentissage or pro):
            title = f"{cert_label} en alternance"
        elif roll < 0.75:
            title = f"{cert_label} — parcours complet"
        elif roll < 0.82:
            title = f"{cert_label} — blocs de compétences"
        elif roll < 0.9 and months >= 12:
            title = f"{cert_label} en {months // 12 if months >= 24 else 1} an" + \
                ("s" if months >= 24 else "")
        else:
            title = f"{cert_label} ({'formation intensive' if months < 12 else 'rythme adapté'})"
        return title[:300]

    def objectif(self, cert_label, prep, level, sector, capabilities) -> str:
        rng = self.rng
        chosen = rng.sample(capabilities, min(3, len(capabilities)))
        level_text = f", certification de niveau {level}" if level != "0" else ""
        return (f"Cette formation prépare {prep} {cert_label}{level_text}. Elle permet "
                f"d'acquérir les compétences attendues dans les métiers {sector}. À l'issue de "
                f"la formation, le stagiaire sera capable {_de(chosen[0])}, {_de(chosen[1])} "
                f"et {_de(chosen[2])}." + rng.choice((
                    "", " Une période en entreprise permet de mettre en pratique les acquis.",
                    " Un accompagnement individualisé est proposé tout au long du parcours.",
                    " Les personnes en situation de handicap sont invitées à contacter le "
                    "référent handicap de l'organisme.")))

    def programme(self, modules, months) -> str:
        rng = self.rng
        chosen = rng.sample(modules, min(len(modules), rng.randint(4, 6)))
        lines = [f"Module {i} — {title} ({rng.randint(3, 12) * 7} h)"
                 for i, title in enumerate(chosen, 1)]
        weeks = max(2, min(16, months))
        lines.append(f"Période de formation en entreprise ({weeks} semaines)")
        lines.append("Techniques de recherche d'emploi et préparation aux épreuves de "
                     "certification")
        return "\n".join(lines)

    # -- sessions and entry points -------------------------------------------------------
    def make_sessions(self) -> None:
        rng = self.rng
        today = self.today
        rows, entry_points = [], []
        # Per eligible session (candidatures possible), parallel lists for speed.
        self.s_id, self.s_debut, self.s_late, self.s_open, self.s_state = [], [], [], [], []
        self.s_places, self.s_eps, self.s_hsp, self.s_region, self.s_struct = [], [], [], [], []
        self.s_annees, self.s_dept, self.s_ref, self.s_fref, self.s_dispositif = \
            [], [], [], [], []
        self.sessions_by_dept: dict[str, list[int]] = defaultdict(list)
        self.sessions_by_struct: dict[int, list[int]] = defaultdict(list)
        counts_weights = (1, 1, 2, 3, 3, 2)
        mode_choices = (EntryMode.DATE_FIXE, EntryMode.SEQUENCEE, EntryMode.PERMANENTE)
        total = 0
        for formation in self.formations:
            state = formation["state"]
            months = formation["months"]
            showcase = formation["showcase"]
            count = rng.choices((1, 2, 3, 4, 5, 6), counts_weights)[0]
            plans = []  # (debut, session state)
            if showcase == "showcase":
                plans = [(today - dt.timedelta(days=months * 30 + 60), SessionState.ACTIVE),
                         (today + dt.timedelta(days=45), SessionState.ACTIVE),
                         (today + dt.timedelta(days=75), SessionState.ANNULEE)]
            elif showcase in ("hsp", "upcoming"):
                plans = [(today + dt.timedelta(days=rng.randint(30, 60)), SessionState.ACTIVE),
                         (today - dt.timedelta(days=rng.randint(200, 300)),
                          SessionState.ACTIVE)]
            else:
                for _ in range(count):
                    if state == FormationState.ARCHIVEE:
                        debut = today - dt.timedelta(days=months * 30 + rng.randint(20, 600))
                    else:
                        debut = today + dt.timedelta(days=rng.randint(-548, 548))
                    if formation["dispositif"] == Dispositif.APPRENTISSAGE:
                        # Apprenticeship cursus start in September or October.
                        year = debut.year if debut.month <= 10 else debut.year + 1
                        candidate = dt.date(year, rng.choice((9, 9, 10)), rng.randint(1, 15))
                        if state != FormationState.ARCHIVEE or \
                                candidate + dt.timedelta(days=months * 30) < today:
                            debut = candidate
                    session_state = SessionState.ACTIVE
                    roll = rng.random()
                    if state in PUBLISHED_FORMATION_STATES and roll < 0.03:
                        session_state = SessionState.ANNULEE
                    elif roll < 0.04:
                        session_state = SessionState.SUPPRIMEE
                    plans.append((debut, session_state))
            for debut, session_state in plans:
                duration = max(14, int(months * 30.4 * rng.uniform(0.85, 1.1)))
                fin = debut + dt.timedelta(days=duration)
                if state == FormationState.ARCHIVEE and fin >= today:
                    fin = today - DAY
                    debut = min(debut, fin)
                hsp = formation["dispositif"] == Dispositif.HSP
                mode = (EntryMode.SEQUENCEE if hsp else
                        rng.choices(mode_choices, (80, 8, 12))[0])
                late = min(fin, debut + dt.timedelta(days=rng.randint(14, 45)))
                limit = debut - dt.timedelta(days=rng.randint(5, 30))
                published = formation["validated"] is not None and \
                    state in PUBLISHED_FORMATION_STATES
                publication = None
                if published:
                    validated_day = clock.to_local(formation["validated"]).date()
                    publication = max(validated_day,
                                      debut - dt.timedelta(days=rng.randint(60, 150)))
                    if publication > today:  # far-off session, published some time ago
                        publication = self.random_day(max(validated_day,
                                                          today - dt.timedelta(days=90)), today)
                session_id = self.ids(Session, 1)[0]
                session_reference = self.reference("session", "", 8)
                formateur = formation["formateur"]
                if rng.random() < 0.75:
                    commune, address = formateur["commune"], formateur["address"]
                else:
                    commune = self.pick_commune(formateur["dept"] if rng.random() < 0.7
                                                else None, pole_share=0.3)
                    address = rng.choice(self.street_pool)
                eps = []
                places = rng.randint(8, 20) if formation["dispositif"] != \
                    Dispositif.APPRENTISSAGE else rng.randint(12, 24)
                if hsp:
                    span = max(0, (fin - debut).days - 7)
                    offsets = sorted({0, *(rng.randint(1, span) for _ in
                                           range(rng.randint(1, 5)) if span > 0)})
                    places = 0
                    for offset in offsets[:6]:
                        ep_places = rng.randint(4, 12)
                        places += ep_places
                        ep_id = self.ids(EntryPoint, 1)[0]
                        ep_date = debut + dt.timedelta(days=offset)
                        entry_points.append({"id": ep_id, "session_id": session_id,
                                             "date_entree": ep_date, "places": ep_places})
                        eps.append((ep_date, ep_id))
                    late = max(late, eps[-1][0])
                    limit = min(limit, eps[0][0])
                created_day = min(today, formation["created"] + dt.timedelta(
                    days=rng.randint(0, 10)))
                created = self.instant(created_day, rng.randint(8, 19), rng.randint(0, 59))
                rows.append({
                    "id": session_id,
                    "reference": session_reference,
                    "formation_id": formation["id"], "date_debut": debut, "date_fin": fin,
                    "adresse": address, "commune_id": commune[0],
                    "cedex": "Cedex" if rng.random() < 0.03 else None,
                    "organisme_formateur_id": formateur["id"], "mode_entree": mode,
                    "places": places, "date_limite_inscription": limit,
                    "date_entree_tardive": late,
                    "ouverte_candidature": session_state == SessionState.ACTIVE and (
                        rng.random() < 0.92 or showcase is not None),
                    "date_publication": publication, "state": session_state,
                    "created_at": created, "updated_at": created})
                total += 1
                if published and session_state != SessionState.SUPPRIMEE:
                    index = len(self.s_id)
                    self.s_id.append(session_id)
                    self.s_debut.append(debut)
                    self.s_late.append(late)
                    self.s_open.append(publication or debut - dt.timedelta(days=90))
                    self.s_state.append(session_state)
                    self.s_places.append(places)
                    self.s_eps.append(eps)
                    self.s_hsp.append(hsp)
                    self.s_region.append(formation["dispositif"] in (
                        Dispositif.HSP, Dispositif.CONVENTIONNE_REGION))
                    self.s_struct.append(formation["structure"])
                    self.s_annees.append(formation["annees"])
                    self.s_dept.append(commune[4])
                    self.s_ref.append(session_reference)
                    self.s_fref.append(formation["reference"])
                    self.s_dispositif.append(formation["dispositif"])
                    self.sessions_by_dept[commune[4]].append(index)
                    self.sessions_by_struct[formation["structure"]].append(index)
            if len(rows) >= CHUNK:
                self.insert(Session, rows)
                self.insert(EntryPoint, entry_points)
                rows, entry_points = [], []
        self.insert(Session, rows)
        self.insert(EntryPoint, entry_points)
        self.s_retenues = [0] * len(self.s_id)
        self.s_count = [0] * len(self.s_id)

    # -- candidates and candidatures -----------------------------------------------------
    def make_candidatures(self) -> None:
        rng = self.rng
        today, now = self.today, self.now
        n = self.n_candidates
        prescribers = self.prescriber_structures
        # France Travail agencies register most candidates; the demo agency many of them.
        weights = []
        for structure in prescribers:
            weight = {PrescriberType.FRANCE_TRAVAIL: 4, PrescriberType.MISSION_LOCALE: 3,
                      PrescriberType.CAP_EMPLOI: 2}.get(structure["type"], 1)
            weights.append(weight)
        demo_index = prescribers.index(self.demo_prescriber)
        weights[demo_index] = max(weights[demo_index], sum(weights) // 30)
        cumulative = []
        acc = 0
        for w in weights:
            acc += w
            cumulative.append(acc)
        email_domains = ("example.com", "example.org", "example.net", "mail.example",
                         "courriel.example")
        upcoming_states = tuple(STATE_WEIGHTS_UPCOMING)
        upcoming_weights = tuple(itertools.accumulate(STATE_WEIGHTS_UPCOMING.values()))
        past_states = tuple(STATE_WEIGHTS_PAST)
        past_weights = tuple(itertools.accumulate(STATE_WEIGHTS_PAST.values()))
        cancel_states = tuple(STATE_WEIGHTS_CANCELLED)
        cancel_weights = tuple(itertools.accumulate(STATE_WEIGHTS_CANCELLED.values()))
        n_eligible = len(self.s_id)
        if not n_eligible:
            raise DemoDataError("Aucune session publiée : impossible de générer des "
                                "candidatures.")
        ft_ids = rng.sample(range(1_000_000, 10_000_000), n)
        steps = list(FollowUpStep)
        forced_states = list(CandidatureState)  # every state appears at least once
        candidates, candidatures = [], []
        nir_budget = NIR_ENCRYPTED_MAX
        candidate_ids = self.ids(Candidate, n)
        report_every = max(1, n // 10)
        demo_struct_id = self.demo_of["id"]
        demo_sessions = self.sessions_by_struct.get(demo_struct_id, [])
        showcase_count = min(n, max(30, n // 200))
        # Transition logs (and the messages they queue) for a sample of candidatures.
        log_share = 0.05 if n > 50_000 else 0.3

        for position, candidate_id in enumerate(candidate_ids):
            showcase = position < showcase_count
            if showcase:
                structure = self.demo_prescriber
            else:
                structure = prescribers[bisect.bisect_right(cumulative, rng.random() * acc)]
            levels = self.prescribers[structure["id"]]
            level_keys = sorted(levels)
            male, prenom, nom = self.person()
            age_years = rng.choice((16, 17, 18, 19, 20, 21, 22, 23, 24, 25)) \
                if rng.random() < 0.35 else rng.randint(18, 64)
            birth = today - dt.timedelta(days=age_years * 365 + rng.randint(30, 330))
            commune = self.pick_commune(structure["dept"] if rng.random() < 0.85 else None,
                                        pole_share=0.35)
            inscrit = structure["type"] == PrescriberType.FRANCE_TRAVAIL or rng.random() < 0.5
            identifiant = f"{ft_ids[position]}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}" \
                if inscrit and rng.random() < 0.85 else None
            nir = None
            if rng.random() < 0.1:
                value = _nir(rng, male, birth)
                if nir_budget > 0:
                    nir_budget -= 1
                    nir = crypto.encrypt(value)
            email = None
            if rng.random() < 0.8:
                email = (f"{_fold(prenom).replace(' ', '')}.{_fold(nom).replace(' ', '')}"
                         f"{rng.randint(1, 99) if rng.random() < 0.5 else ''}"
                         f"@{rng.choice(email_domains)}")
            identifiant_regional = f"NA{rng.randint(0, 99_999_999):08d}" \
                if rng.random() < 0.3 else None
            person = {"nom": nom, "prenom": prenom, "birth": birth, "email": email,
                      "inscrit": inscrit, "identifiant": identifiant,
                      "identifiant_regional": identifiant_regional}
            # Candidatures of this candidate.
            k = rng.choices((1, 2, 3, 4), cum_weights=(40, 70, 90, 100))[0]
            chosen: list[int] = []
            for _ in range(k):
                for _attempt in range(6):
                    if showcase and demo_sessions and rng.random() < 0.6:
                        index = rng.choice(demo_sessions)
                    else:
                        pool = self.sessions_by_dept.get(commune[4])
                        if pool and rng.random() < 0.7:
                            index = rng.choice(pool)
                        else:
                            index = int(rng.random() * n_eligible)
                    if index not in chosen:
                        chosen.append(index)
                        break
            forced_first = None
            if showcase and forced_states:
                # The showcase candidates make every state appear, even at tiny scales.
                index = self._session_for_state(forced_states[0], chosen[0])
                if index is None:
                    forced_states.pop(0)  # no session allows it: give up on this state
                elif index == chosen[0] or index not in chosen:
                    chosen[0] = index
                    forced_first = forced_states.pop(0)
            pending = pending_hsp = 0
            first_created = last_activity = None
            for position_in_candidate, index in enumerate(chosen):
                forced = forced_first if position_in_candidate == 0 else None
                late = self.s_late[index]
                session_state = self.s_state[index]
                hsp = self.s_hsp[index]
                if forced:
                    state = forced
                elif session_state == SessionState.ANNULEE:
                    state = rng.choices(cancel_states, cum_weights=cancel_weights)[0]
                elif late < today:
                    state = rng.choices(past_states, cum_weights=past_weights)[0]
                else:
                    state = rng.choices(upcoming_states, cum_weights=upcoming_weights)[0]
                open_from = self.s_open[index]
                open_to = min(late, today)
                if open_from > open_to:
                    open_from = open_to - dt.timedelta(days=30)
                if state == CandidatureState.CORBEILLE and \
                        open_from > today - dt.timedelta(days=16):
                    state = (CandidatureState.BROUILLON if late >= today
                             else CandidatureState.ANNULEE)
                # Level: 1 needs a level-3 validation; 2 and 3 go straight to the OF.
                if state == CandidatureState.EN_ATTENTE_VALIDATION and not levels.get(1):
                    state = CandidatureState.EN_ATTENTE_AVIS
                if state == CandidatureState.EN_ATTENTE_VALIDATION:
                    level = 1
                else:
                    level = rng.choice(level_keys)
                if state == CandidatureState.EN_ATTENTE_AVIS:
                    if pending >= 3 or (hsp and pending_hsp >= 1):
                        state = CandidatureState.NON_RETENUE
                if state == CandidatureState.RETENUE and \
                        self.s_retenues[index] >= self.s_places[index]:
                    state = CandidatureState.REFUS_SESSION_COMPLETE
                if state in (CandidatureState.BROUILLON, CandidatureState.EN_ATTENTE_VALIDATION):
                    day = self.random_day(max(open_from, today - dt.timedelta(days=13)),
                                          open_to)
                elif state == CandidatureState.CORBEILLE:
                    day = self.random_day(open_from, min(open_to,
                                                         today - dt.timedelta(days=16)))
                else:
                    day = self.random_day(open_from, open_to)
                level_users = levels.get(level) or next(iter(levels.values()))
                prescriber_user = rng.choice(level_users)
                # Timeline.
                submitted_at = validated_at = avis_at = avis_by = motif = None
                first = self.working_instant(day)
                created_at = first - dt.timedelta(minutes=rng.randint(5, 90))
                updated_at = first
                limit_day = min(late, today)
                if state == CandidatureState.BROUILLON:
                    created_at, updated_at = first, first
                elif state == CandidatureState.CORBEILLE:
                    created_at = first
                    updated_at = min(now, self.instant(day + dt.timedelta(days=15), 3))
                elif (state == CandidatureState.ANNULEE and level == 1 and
                      day + dt.timedelta(days=16) <= limit_day and rng.random() < 0.4):
                    # A level-1 candidature nobody validated within 15 days: expired.
                    submitted_at = first
                    updated_at = self.instant(day + dt.timedelta(days=15), 3)
                else:
                    submitted_at = first
                    if state != CandidatureState.EN_ATTENTE_VALIDATION:
                        # Level 1 waits for a level-3 validation (within 15 days).
                        validated_at = (self.later_working(first, 10, limit_day)
                                        if level == 1 else first)
                    updated_at = validated_at or first
                    if state in AVIS_STATES:
                        avis_at = self.later_working(updated_at, 25, limit_day)
                        avis_by = rng.choice(self.of_avis_users[self.s_struct[index]])
                        if state == CandidatureState.NON_RETENUE:
                            motif = rng.choice(MOTIFS_NON_RETENUE)
                        elif state == CandidatureState.REFUS_SESSION_COMPLETE:
                            motif = MOTIF_COMPLETE
                        elif state == CandidatureState.REFUS_SESSION_ANNULEE:
                            motif = MOTIF_ANNULEE
                        updated_at = avis_at
                    elif state == CandidatureState.ANNULEE:
                        updated_at = self.later_working(updated_at, 20, limit_day)
                    elif state == CandidatureState.AVIS_NON_TRANSMIS:
                        updated_at = max(updated_at, min(now, self.instant(late + DAY, 2)))
                if state == CandidatureState.RETENUE:
                    self.s_retenues[index] += 1
                elif state == CandidatureState.EN_ATTENTE_AVIS:
                    pending += 1
                    pending_hsp += hsp
                entry_point = None
                if hsp and self.s_eps[index]:
                    eps = self.s_eps[index]
                    entry_point = eps[-1][1]
                    for ep_date, ep_id in eps:
                        if ep_date >= day:
                            entry_point = ep_id
                            break
                annees = self.s_annees[index]
                etape = None
                if state == CandidatureState.RETENUE:
                    etape = rng.choices(steps, (5, 10, 10, 10, 15, 50))[0]
                elif state in (CandidatureState.EN_ATTENTE_AVIS,) and rng.random() < 0.4:
                    etape = rng.choice(steps[:3])
                candidature_id = self.ids(Candidature, 1)[0]
                draft = state in (CandidatureState.BROUILLON, CandidatureState.CORBEILLE)
                reference = self.reference("candidature", str(day.year), 12)
                candidatures.append({
                    "id": candidature_id, "reference": reference,
                    "candidate_id": candidate_id, "session_id": self.s_id[index],
                    "entry_point_id": entry_point, "prescriber_user_id": prescriber_user,
                    "prescriber_structure_id": structure["id"],
                    "positionneur": None, "state": state, "etape_suivi": etape,
                    "parcours_anterieur": rng.choice(PARCOURS_ANTERIEURS).format(
                        annee=rng.randint(2005, today.year - 1), mois=rng.randint(3, 36))
                    if rng.random() < 0.7 else None,
                    "raisons_choix": rng.choice(RAISONS_CHOIX) if rng.random() < 0.7 else None,
                    "suites_parcours": rng.choice(SUITES_PARCOURS)
                    if rng.random() < 0.4 else None,
                    "annee_cursus": rng.choice(annees) if annees and rng.random() < 0.7
                    else None,
                    "envoi_recapitulatif": email is not None and rng.random() < 0.6,
                    "consentement": (not draft) or rng.random() < 0.5,
                    "submitted_at": submitted_at, "validated_at": validated_at,
                    "avis_at": avis_at, "avis_by_id": avis_by, "avis_motif": motif,
                    "extra": {}, "created_at": created_at, "updated_at": updated_at})
                if first_created is None or created_at < first_created:
                    first_created = created_at
                if last_activity is None or updated_at > last_activity:
                    last_activity = updated_at
                if showcase or rng.random() < log_share:
                    self._log_candidature(candidatures[-1], index, level, structure, person)
            if first_created is None:  # no session could be chosen (tiny datasets)
                first_created = last_activity = self.working_instant(today)
            registered = first_created - dt.timedelta(minutes=rng.randint(5, 60 * 24 * 20))
            candidates.append({
                "id": candidate_id,
                "civilite": Civilite.MONSIEUR if male else Civilite.MADAME,
                "nom": nom, "prenom": prenom, "nom_normalise": _name_key(nom),
                "prenom_normalise": _name_key(prenom), "date_naissance": birth,
                "email": email, "telephone": self.phone(True) if rng.random() < 0.85 else None,
                "code_postal": commune[2], "commune_id": commune[0],
                "identifiant_france_travail": identifiant,
                "identifiant_regional": identifiant_regional,
                "inscrit_france_travail": inscrit, "nir_chiffre": nir,
                "created_by_structure_id": structure["id"], "last_activity_at": last_activity,
                "anonymised_at": None, "extra": {}, "created_at": registered,
                "updated_at": last_activity})
            if len(candidatures) >= CHUNK:
                self._flush_candidatures(candidates, candidatures)
                candidates, candidatures = [], []
            if (position + 1) % report_every == 0 and n >= 1000:
                self.echo(f"    {_fr(position + 1)} / {_fr(n)} candidats "
                          f"({_fr(self.counts['candidature'] + len(candidatures))} "
                          "candidatures)")
        self._flush_candidatures(candidates, candidatures)

    def _flush_candidatures(self, candidates: list[dict], candidatures: list[dict]) -> None:
        self.insert(Candidate, candidates)
        self.insert(Candidature, candidatures)
        self.insert(TransitionLog, self.log_rows)
        self.insert(OutboundMessage, self.message_rows)
        self.log_rows.clear()
        self.message_rows.clear()
        db.session.commit()

    def _session_for_state(self, state: str, preferred: int) -> int | None:
        """A session index whose timing allows ``state`` (for the forced showcase states)."""
        today = self.today
        wanted_cancelled = state == CandidatureState.REFUS_SESSION_ANNULEE
        wanted_past = state == CandidatureState.AVIS_NON_TRANSMIS
        wanted_upcoming = state in (CandidatureState.BROUILLON,
                                    CandidatureState.EN_ATTENTE_VALIDATION,
                                    CandidatureState.EN_ATTENTE_AVIS)

        def fits(i: int) -> bool:
            if wanted_cancelled:
                return self.s_state[i] == SessionState.ANNULEE
            if self.s_state[i] != SessionState.ACTIVE:
                return False
            if wanted_past:
                return self.s_late[i] < today
            if wanted_upcoming:
                return self.s_late[i] >= today and self.s_open[i] <= today
            if state == CandidatureState.CORBEILLE:
                return self.s_open[i] <= today - dt.timedelta(days=20)
            return True

        if fits(preferred):
            return preferred
        demo = self.sessions_by_struct.get(self.demo_of["id"], [])
        for i in demo + list(range(len(self.s_id))):
            if fits(i):
                return i
        return None

    def _log_candidature(self, c: dict, index: int, level: int, structure: dict,
                         candidate: dict) -> None:
        """Transition-log rows of one candidature, with the e-mails and hub messages the
        workflow's side effects would have queued (same subjects and idempotency keys)."""
        state = c["state"]
        prescriber = c["prescriber_user_id"]
        events = []  # (transition, from, to, actor, at, reason)
        if state == CandidatureState.CORBEILLE:
            if self.rng.random() < 0.5:
                events.append(("expirer_brouillon", CandidatureState.BROUILLON, state, None,
                               c["updated_at"], None))
            else:
                events.append(("jeter", CandidatureState.BROUILLON, state, prescriber,
                               c["updated_at"], None))
        elif c["submitted_at"] is not None:
            if level == 1:
                events.append(("soumettre_pour_validation", CandidatureState.BROUILLON,
                               CandidatureState.EN_ATTENTE_VALIDATION, prescriber,
                               c["submitted_at"], None))
                if c["validated_at"] is not None:
                    validators = self.prescribers[structure["id"]].get(3) or [prescriber]
                    events.append(("valider", CandidatureState.EN_ATTENTE_VALIDATION,
                                   CandidatureState.EN_ATTENTE_AVIS, validators[0],
                                   c["validated_at"], None))
            else:
                events.append(("soumettre", CandidatureState.BROUILLON,
                               CandidatureState.EN_ATTENTE_AVIS, prescriber, c["submitted_at"],
                               None))
            pending = events[-1][2]
            if c["avis_at"] is not None:
                events.append((AVIS_TRANSITIONS[state], pending, state, c["avis_by_id"],
                               c["avis_at"], c["avis_motif"]))
            elif state == CandidatureState.ANNULEE:
                if pending == CandidatureState.EN_ATTENTE_VALIDATION:
                    events.append(("expirer_validation", pending, state, None, c["updated_at"],
                                   "Non validée dans le délai de 15 jours"))
                else:
                    events.append(("annuler", pending, state, prescriber, c["updated_at"],
                                   "Le candidat a trouvé un emploi."))
            elif state == CandidatureState.AVIS_NON_TRANSMIS:
                events.append(("constater_avis_non_transmis", pending, state, None,
                               c["updated_at"], None))
        description = (f"la candidature {c['reference']} de {candidate['prenom']} "
                       f"{candidate['nom'].upper()} (session {self.s_ref[index]})")
        for transition, before, after, actor, at, reason in events:
            log_id = self.ids(TransitionLog, 1)[0]
            self.log_rows.append({
                "id": log_id, "object_type": "candidature", "object_id": c["id"],
                "transition": transition, "from_state": before, "to_state": after,
                "actor_id": actor, "at": at, "reason": reason})
            definition = self.candidature_workflow.transitions[transition]
            emails: list[str] = []
            for effect in definition.effects:
                if effect == "message_hub":
                    if candidate["inscrit"] and self.s_region[index]:
                        self.message_rows.append(self._message(
                            Channel.HUB, "hub", "candidature", None,
                            self._hub_payload(c, index, transition, after, at, reason,
                                              candidate, structure),
                            "candidature", c["id"], f"hub:{log_id}", at))
                    continue
                if effect == "notifier_valideurs":
                    recipients = self.prescribers[structure["id"]].get(3, ())
                elif effect == "notifier_of":
                    recipients = self.of_avis_users[self.s_struct[index]]
                elif effect == "notifier_prescripteur":
                    recipients = (prescriber,)
                else:  # notifier_candidat
                    recipients = ()
                    if c["envoi_recapitulatif"] and candidate["email"]:
                        emails.append(candidate["email"])
                emails.extend(self.users[user_id]["email"] for user_id in recipients)
            # Once per recipient and transition (the idempotency key of queue_email).
            context = notifications.transition_email_context(
                self.candidature_workflow, definition, description=description, reason=reason,
                at=at)
            for recipient in dict.fromkeys(emails):
                self._email(recipient, context, "candidature", c["id"], log_id, at)

    def _email(self, recipient, context, related_type, related_id, log_id, at) -> None:
        """The message ``notifications._notify`` queues for a transition (its bodies do
        not depend on the recipient: rendered once per context, as ``_notify`` does)."""
        if self._rendered[0] is not context:  # held here: its id cannot be reused meanwhile
            self._rendered = (context, notifications.render_email("transition", **context))
        body_text, body_html = self._rendered[1]
        row = self._message(Channel.EMAIL, recipient, context["subject"], body_text, None,
                            related_type, related_id, f"transition:{log_id}:{recipient}", at)
        row["body_html"] = body_html
        self.message_rows.append(row)

    def _hub_payload(self, c, index, transition, after, at, reason, candidate,
                     structure) -> dict:
        return notifications.hub_payload(
            event=transition, state=after, reference=c["reference"], at=at,
            session=self.s_ref[index], formation=self.s_fref[index],
            dispositif=self.s_dispositif[index], reason=reason,
            identifiant_france_travail=candidate["identifiant"],
            identifiant_regional=candidate["identifiant_regional"], nom=candidate["nom"],
            prenom=candidate["prenom"], date_naissance=candidate["birth"],
            prescriber_siret=structure["siret"])

    def _message(self, channel, recipient, subject, body, payload, related_type, related_id,
                 key, at) -> dict:
        rng = self.rng
        # Older messages went out; the last minutes' are still queued. Demo mailboxes
        # (a real domain) never get a queued message.
        sent = at < self.now - dt.timedelta(minutes=10) or recipient.endswith("@demo.fr")
        status = MessageStatus.ENVOYE if sent else MessageStatus.EN_ATTENTE
        error = None
        attempts = 1 if sent else 0
        if sent and rng.random() < 0.02 and not recipient.endswith("@demo.fr"):
            status, attempts = MessageStatus.ECHEC, 5
            error = ("550 5.1.1 Adresse inconnue" if channel == Channel.EMAIL
                     else "Délai dépassé en contactant le hub régional (HTTP 504)")
        sent_at = min(self.now, at + dt.timedelta(minutes=rng.randint(1, 15))) \
            if status == MessageStatus.ENVOYE else None
        row = {"id": self.ids(OutboundMessage, 1)[0], "channel": channel,
               "recipient": recipient, "subject": subject, "body_text": body,
               "body_html": None, "related_type": related_type, "related_id": related_id,
               "idempotency_key": key, "status": status, "attempts": attempts,
               "last_error": error,
               "next_attempt_at": self.now if status == MessageStatus.EN_ATTENTE else (
                   at if status == MessageStatus.ECHEC else None),
               "sent_at": sent_at, "created_by_id": None, "created_at": at,
               "updated_at": sent_at or at}
        if payload is not None:
            row["payload"] = payload
        return row

    # -- transition log (formations), messages, job runs ----------------------------------
    def make_misc(self) -> None:
        rng = self.rng
        for formation in self.formations:
            if formation["state"] == FormationState.BROUILLON or (
                    formation["showcase"] is None and rng.random() < 0.5):
                continue
            self._log_formation(formation)
        # Activation e-mails of accounts waiting for activation.
        for user_id, user in self.users.items():
            if user["state"] == UserState.A_ACTIVER:
                self.message_rows.append(self._message(
                    Channel.EMAIL, user["email"], "Activez votre compte",
                    f"Bonjour {user['prenom']} {user['nom']},\n\nVotre compte a été créé. "
                    "Activez-le avec le lien reçu (valable 7 jours).", None, "user", user_id,
                    f"activation:{user_id}", user["created"]))
        self.insert(TransitionLog, self.log_rows)
        self.insert(OutboundMessage, self.message_rows)
        self.log_rows.clear()
        self.message_rows.clear()
        # A few runs of the scheduled jobs.
        jobs = ("expirer_brouillons", "expirer_validations_niveau_1", "avis_non_transmis",
                "archiver_formations", "rappels_moderation", "purge_rgpd", "envoi_hub")
        runs = []
        for days_ago in range(7, 0, -1):
            day = self.today - dt.timedelta(days=days_ago)
            for job in jobs:
                started = self.instant(day, 2, jobs.index(job) * 5)
                failed = rng.random() < 0.03
                seen = rng.randint(0, 400)
                runs.append({"id": self.ids(JobRun, 1)[0], "job": job, "run_for": started,
                             "started_at": started,
                             "ended_at": started + dt.timedelta(seconds=rng.randint(1, 90)),
                             "status": JobRunStatus.ECHEC if failed else JobRunStatus.SUCCES,
                             "dry_run": False, "rows_seen": seen,
                             "rows_changed": 0 if failed else rng.randint(0, seen),
                             "summary": None if failed else f"{seen} lignes examinées",
                             "error": "Connexion au serveur SMTP refusée" if failed else None})
        self.insert(JobRun, runs)

    def _log_formation(self, formation: dict) -> None:
        """The transitions of workflows/formation.yaml that led to the formation's state."""
        rng = self.rng
        state = formation["state"]
        owner = formation["structure"]
        author = rng.choice(self.of_catalogue_users[owner])
        moderator = rng.choice(self.moderators)
        events = [("publier", FormationState.BROUILLON, FormationState.EN_ATTENTE_MODERATION,
                   author, formation["submitted"], None)]
        if formation["validated"] is not None:
            events.append(("valider", FormationState.EN_ATTENTE_MODERATION,
                           FormationState.VALIDEE, moderator, formation["validated"], None))
        if state == FormationState.COMPLEMENT_DEMANDE:
            events.append(("demander_complement", FormationState.EN_ATTENTE_MODERATION, state,
                           moderator, formation["updated"], formation["comment"]))
        elif state == FormationState.MODIFIEE:
            events.append(("modifier", FormationState.VALIDEE, state, author,
                           formation["updated"], None))
        elif state == FormationState.ARCHIVEE:
            events.append(("archiver", FormationState.VALIDEE, state, None,
                           formation["updated"], "Toutes les sessions sont terminées"))
        elif state == FormationState.SUPPRIMEE:
            events.append(("supprimer", FormationState.VALIDEE, state, author,
                           formation["updated"], None))
        for transition, before, after, actor, at, reason in events:
            log_id = self.ids(TransitionLog, 1)[0]
            self.log_rows.append({
                "id": log_id, "object_type": "formation", "object_id": formation["id"],
                "transition": transition, "from_state": before, "to_state": after,
                "actor_id": actor, "at": at, "reason": reason})
        # The e-mails of the last transition (notifier_moderateurs / notifier_of).
        transition, _before, after, _actor, at, reason = events[-1]
        definition = self.formation_workflow.transitions[transition]
        if "notifier_moderateurs" in definition.effects:
            recipients = self.moderators
        elif "notifier_of" in definition.effects:
            recipients = self.of_catalogue_users[owner]
        else:
            return
        context = notifications.transition_email_context(
            self.formation_workflow, definition, reason=reason, at=at,
            description=f"la formation {formation['reference']} « {formation['intitule']} »")
        for user_id in recipients:
            self._email(self.users[user_id]["email"], context, "formation", formation["id"],
                        log_id, at)

    def suspend_indexes(self) -> None:
        connection = db.session.connection()
        text_index.uninstall(connection)
        search.uninstall_sessions(connection)
        search.uninstall(connection)

    def rebuild_indexes(self) -> None:
        connection = db.session.connection()
        if self.is_postgres:  # GIN and B-tree builds sort in memory (default: 64 MB)
            connection.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        search.install(connection)
        search.install_terms(connection)
        search.install_sessions(connection)
        text_index.install(connection)

    def analyze(self) -> None:
        """Planner statistics after the bulk load. Without them SQLite filters the
        candidature list by state through the (state, updated_at) index and sorts every
        matching row (2 s at scale 25 instead of 20 ms); PostgreSQL would wait for
        autovacuum. (Both accept ANALYZE inside a transaction.) PostgreSQL: VACUUM too
        (outside a transaction), which sets the visibility map of the loaded pages —
        until autovacuum came by, every index-only scan of search (the open sessions, the
        facets) read the table as well: 57 ms instead of 40 for a search without criteria."""
        if not self.is_postgres:
            db.session.execute(text("ANALYZE"))
            return
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM (ANALYZE)")

    # -- PostgreSQL ----------------------------------------------------------------------
    def reset_sequences(self) -> None:
        for table in db.metadata.sorted_tables:
            if "id" not in table.c or not self.counts.get(table.name):
                continue
            db.session.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"(SELECT max(id) FROM \"{table.name}\"))"))



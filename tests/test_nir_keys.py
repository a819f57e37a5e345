"""NIR encryption keys: their own setting, rotation with MultiFernet and ``backoffice nir
rotate``, mandatory in production, and a failure reported rather than taken for « no NIR »."""
from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from backoffice import clock, crypto
from backoffice.extensions import db
from backoffice.models import Candidate, StructureKind
from tests import factories as f
from tests.conftest import login

KEY_A, KEY_B, KEY_C = (Fernet.generate_key().decode() for _ in range(3))
NIRS = ["295053306312384", "180012A01234566", "195053306312318", "284127512345678",
        "190017512345601"]


@pytest.fixture
def keys(app, monkeypatch):
    """Set NIR_ENCRYPTION_KEYS for the test (restored afterwards)."""
    monkeypatch.setitem(app.config, "NIR_ENCRYPTION_KEY", None)

    def use(value: str) -> None:
        monkeypatch.setitem(app.config, "NIR_ENCRYPTION_KEYS", value)
    return use


def rotate(app, batch_size=2):
    result = app.test_cli_runner().invoke(args=["nir", "rotate", "--batch-size",
                                                str(batch_size)])
    db.session.expire_all()
    return result


def stored_tokens():
    return {c.id: c.nir_chiffre for c in db.session.query(Candidate).order_by(Candidate.id)}


def test_rotation_from_key_a_to_b_then_b_alone_reads_every_value(app, keys):
    keys(KEY_A)
    candidates = []
    for nir in NIRS:
        candidate = f.create_candidate()
        candidate.nir = nir
        candidates.append(candidate)
    f.create_candidate()  # no NIR: left alone
    db.session.commit()
    before = stored_tokens()

    keys(f"{KEY_B},{KEY_A}")  # B is new: it encrypts, A still decrypts
    assert [c.nir for c in candidates] == NIRS
    result = rotate(app)
    assert result.exit_code == 0, result.output
    assert "5 NIR examinés, 5 rechiffrés" in result.output
    after = stored_tokens()
    assert all(after[c.id] != before[c.id] for c in candidates)
    assert rotate(app).output.startswith("5 NIR examinés, 0 rechiffrés")  # idempotent
    assert stored_tokens() == after

    keys(KEY_B)  # A dropped: everything still reads
    db.session.expire_all()
    assert [db.session.get(Candidate, c.id).nir for c in candidates] == NIRS


def test_a_passphrase_of_earlier_versions_still_decrypts_behind_a_new_key(app, keys):
    """Data encrypted with the key derived from SECRET_KEY (the old default) is read when
    that passphrase is listed behind a new Fernet key, and rotated to it."""
    keys("")
    candidate = f.create_candidate()
    candidate.nir = NIRS[0]
    db.session.commit()
    keys(f"{KEY_B},{app.config['SECRET_KEY']}")
    db.session.expire_all()
    assert candidate.nir == NIRS[0]
    assert "1 rechiffrés" in rotate(app).output
    keys(KEY_B)
    db.session.expire_all()
    assert candidate.nir == NIRS[0]


def test_a_wrong_key_is_reported_not_taken_for_an_empty_nir(app, client, keys, caplog):
    keys(KEY_A)
    structure = f.create_structure(kind=StructureKind.PRESCRIPTEUR,
                                   prescriber_type="mission_locale")
    prescriber = f.create_prescriber("prescripteur_n2", structure)
    candidate = f.create_candidate(created_by_structure_id=structure.id)
    candidate.nir = NIRS[0]
    db.session.commit()

    keys(KEY_C)
    db.session.expire_all()
    with caplog.at_level(logging.ERROR, logger="backoffice.crypto"):
        with pytest.raises(crypto.NirDecryptionError):
            candidate.nir
    assert "NIR illisible" in caplog.text

    result = rotate(app)
    assert result.exit_code != 0
    assert "1 illisibles" in result.output and "NIR_ENCRYPTION_KEYS" in result.output

    with clock.frozen(clock.now()):
        login(client, prescriber)
        page = client.get(f"/prescription/candidats/{candidate.id}/modifier")
    assert page.status_code == 200
    assert "NIR illisible : clé de chiffrement manquante" in page.text


def test_production_refuses_to_start_without_nir_keys(monkeypatch):
    monkeypatch.setenv("BACKOFFICE_ENV", "production")
    config = {"SECRET_KEY": "une-vraie-clé", "NIR_ENCRYPTION_KEYS": "",
              "NIR_ENCRYPTION_KEY": None}
    with pytest.raises(crypto.NirKeyMissing, match="NIR_ENCRYPTION_KEYS"):
        crypto.build(config, production=True)
    bare = Flask(__name__)  # the start-up hook create_app calls
    bare.config.update(config)
    with pytest.raises(crypto.NirKeyMissing):
        crypto.init_app(bare)
    monkeypatch.setenv("BACKOFFICE_ENV", "development")
    crypto.init_app(bare)  # outside production: the development key
    multi, _newest = crypto.build({**config, "NIR_ENCRYPTION_KEY": KEY_A}, production=True)
    assert Fernet(KEY_A.encode()).decrypt(multi.encrypt(b"x")) == b"x"

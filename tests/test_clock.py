"""One clock for the whole application: UTC inside, Europe/Paris for people."""
from __future__ import annotations

import datetime as dt

import pytest

from backoffice import clock
from backoffice.models import JobRun
from tests.factories import create_structure


def test_frozen_clock_drives_timestamps(db):
    instant = dt.datetime(2027, 3, 29, 6, 30, tzinfo=dt.timezone.utc)
    with clock.frozen(instant):
        structure = create_structure()
        db.session.commit()
    db.session.expire_all()
    assert structure.created_at == instant
    assert structure.created_at.tzinfo is not None


def test_paris_time_for_display_across_daylight_saving():
    winter = dt.datetime(2027, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
    summer = dt.datetime(2027, 7, 15, 12, 0, tzinfo=dt.timezone.utc)
    assert clock.format_local(winter) == "15/01/2027 13:00"
    assert clock.format_local(summer) == "15/07/2027 14:00"


def test_cli_instants_without_offset_are_paris_time():
    assert clock.parse_instant("2027-07-15T14:00") == \
        dt.datetime(2027, 7, 15, 12, 0, tzinfo=dt.timezone.utc)
    assert clock.parse_instant("2027-07-15T14:00+00:00").hour == 14


def test_today_is_the_paris_date():
    with clock.frozen(dt.datetime(2027, 1, 15, 23, 30, tzinfo=dt.timezone.utc)):
        assert clock.today() == dt.date(2027, 1, 16)


def test_naive_instants_are_refused_by_the_clock():
    with pytest.raises(ValueError):
        clock.set_now(dt.datetime(2027, 1, 1))


def test_cli_at_option_sets_the_clock(app):
    from backoffice.cli import at_option
    import click
    from click.testing import CliRunner

    @click.command()
    @at_option
    def show():
        click.echo(clock.now().isoformat())

    result = CliRunner().invoke(show, ["--at", "2027-02-01T09:00"])
    assert result.output.strip() == "2027-02-01T08:00:00+00:00"
    clock.set_now(None)


def test_jobrun_stores_utc(db):
    instant = dt.datetime(2027, 6, 1, 22, 0, tzinfo=clock.PARIS)
    db.session.add(JobRun(job="essai", run_for=instant, started_at=instant))
    db.session.commit()
    db.session.expire_all()
    stored = db.session.query(JobRun).one()
    assert stored.run_for == dt.datetime(2027, 6, 1, 20, 0, tzinfo=dt.timezone.utc)

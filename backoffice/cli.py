"""Command line: ``backoffice <command>``.

It is Flask's CLI bound to ``create_app`` (so ``backoffice run``, ``backoffice shell`` and
``backoffice db upgrade`` from Flask-Migrate work), plus the back office's own commands:

* ``backoffice demo-data --scale N``: generate deterministic demo data;
* ``backoffice bootstrap``: what ``make run`` does before serving (migrate, demo data
  when the database is empty, print the demo accounts).

Commands that depend on the time accept ``--at`` (ISO date-time, Europe/Paris when no
offset is given) and set the application clock.
"""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from backoffice import clock


def _create_app() -> Flask:
    from backoffice import create_app
    return create_app()


def set_clock(_ctx, _param, value: str | None):
    if value:
        try:
            clock.set_now(clock.parse_instant(value))
        except ValueError as exc:
            raise click.BadParameter(f"date-heure ISO attendue (ex. 2026-11-23T09:00) : {exc}")
    return value


at_option = click.option("--at", callback=set_clock, expose_value=False, is_eager=True,
                         help="Instant de référence (ISO 8601, heure de Paris par défaut).")


@click.command("demo-data")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="1 ≈ 2 000 formations, 8 000 sessions, 20 000 candidats, 40 000 candidatures.")
@click.option("--seed", type=int, default=20261122, show_default=True)
@click.option("--if-empty", is_flag=True, help="Ne rien faire si la base contient déjà des structures.")
@at_option
@with_appcontext
def demo_data_command(scale: float, seed: int, if_empty: bool) -> None:
    """Génère des données de démonstration réalistes pour la Nouvelle-Aquitaine."""
    from backoffice import demo

    if if_empty and not demo.database_is_empty():
        click.echo("La base contient déjà des données : aucune donnée de démonstration ajoutée.")
        return
    report = demo.generate(scale=scale, seed=seed, echo=click.echo)
    click.echo(report)


@click.command("demo-accounts")
@with_appcontext
def demo_accounts_command() -> None:
    """Affiche les comptes de démonstration (un par rôle)."""
    from backoffice import demo

    click.echo(demo.accounts_table())


@click.command("bootstrap")
@click.option("--scale", type=float, default=0.1, show_default=True)
@with_appcontext
def bootstrap_command(scale: float) -> None:
    """Migre la base, charge la démonstration si elle est vide et affiche les comptes."""
    from flask_migrate import upgrade

    from backoffice import demo

    upgrade()
    if demo.database_is_empty():
        click.echo(f"Base vide : chargement des données de démonstration (échelle {scale})…")
        click.echo(demo.generate(scale=scale, seed=20261122, echo=click.echo))
    click.echo(demo.accounts_table())


def register_commands(app: Flask) -> None:
    for command in (demo_data_command, demo_accounts_command, bootstrap_command):
        app.cli.add_command(command)


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Back office de l'offre de formation et des candidatures."""

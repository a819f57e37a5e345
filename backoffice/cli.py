"""Command line: ``backoffice <command>``.

It is Flask's CLI bound to ``create_app`` (so ``backoffice run``, ``backoffice shell`` and
``backoffice db upgrade`` from Flask-Migrate work), plus the back office's own commands:

* ``backoffice demo-data --scale N``: generate deterministic demo data;
* ``backoffice bootstrap``: what ``make run`` does before serving (migrate, demo data
  when the database is empty, print the demo accounts);
* ``backoffice worker [--once]``: run the task queue (``backoffice/tasks.py``); the
  ``backoffice scheduler`` process runs it too;
* ``backoffice bench --scale N --database URL``: the performance benchmark
  (``backoffice/bench/``), each figure beside a naive peer;
* ``backoffice nir rotate [--batch-size N]``: re-encrypt every NIR with the newest key of
  ``NIR_ENCRYPTION_KEYS`` (see ``backoffice/services/nir_keys.py``).

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


@click.command("demo-code")
def demo_code_command() -> None:
    """Affiche le code de double authentification actuel des comptes d'équipe de
    démonstration (clé DEMO_TOTP_SECRET), valable 30 secondes."""
    import pyotp

    from backoffice import clock, demo

    click.echo(pyotp.TOTP(demo.DEMO_TOTP_SECRET).at(clock.now()))


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


@click.group("jobs")
def jobs_group() -> None:
    """Tâches planifiées : lister, lancer à la main."""


@jobs_group.command("list")
@with_appcontext
def jobs_list_command() -> None:
    """Liste les tâches, leur planification et leur prochaine exécution."""
    from backoffice import scheduler

    upcoming = scheduler.next_run_times()
    for job in scheduler.jobs().values():
        click.echo(f"{job.name:32} {job.schedule_text:28} prochaine : "
                   f"{clock.format_local(upcoming[job.name])}  — {job.label}")


@jobs_group.command("run")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Montre ce qui serait fait, sans rien changer.")
@click.option("--batch-size", type=int, default=500, show_default=True)
@at_option
@with_appcontext
def jobs_run_command(name: str, dry_run: bool, batch_size: int) -> None:
    """Lance la tâche NAME pour l'instant --at (maintenant par défaut)."""
    from backoffice import scheduler

    try:
        run = scheduler.run_job(name, dry_run=dry_run, batch_size=batch_size)
    except scheduler.UnknownJob as error:
        raise click.ClickException(str(error)) from None
    if run.status == "echec":
        raise click.ClickException(f"{name} : échec — {run.error}")
    click.echo(f"{name} : {run.summary} ({run.rows_seen} vues, {run.rows_changed} modifiées)")


@click.group("nir")
def nir_group() -> None:
    """Clés de chiffrement du NIR."""


@nir_group.command("rotate")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
@with_appcontext
def nir_rotate_command(batch_size: int) -> None:
    """Rechiffre chaque NIR avec la clé la plus récente de NIR_ENCRYPTION_KEYS."""
    from backoffice.services import nir_keys

    report = nir_keys.rotate_keys(batch_size=batch_size)
    click.echo(str(report))
    if report.unreadable:
        raise click.ClickException(
            f"{report.unreadable} NIR illisibles : ajoutez à NIR_ENCRYPTION_KEYS la clé "
            "qui les a chiffrés, puis relancez.")


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Exécute les tâches planifiées (un seul processus à la fois : verrou) et la file
    des tâches."""
    from flask import current_app

    from backoffice import scheduler, tasks

    app = current_app._get_current_object()
    lock = scheduler.SchedulerLock(app)
    if not lock.acquire():
        click.echo("Un autre planificateur tourne déjà : arrêt.")
        raise SystemExit(3)
    click.echo("Planificateur démarré : " + ", ".join(scheduler.jobs()))
    click.echo("File des tâches exécutée aussi par ce processus.")
    runner = tasks.Runner(app)
    runner.start_thread()
    try:
        scheduler.build_scheduler(app, background=False).start()
    finally:
        runner.stop()
        lock.release()


@click.command("worker")
@click.option("--once", is_flag=True, help="Exécute les tâches en attente puis s'arrête.")
@with_appcontext
def worker_command(once: bool) -> None:
    """Exécute la file des tâches (imports, essais de règles, « Lancer maintenant ») ;
    plusieurs peuvent tourner à la fois."""
    from flask import current_app

    from backoffice import tasks

    app = current_app._get_current_object()
    if once:
        click.echo(f"{tasks.run_pending(app)} tâche(s) exécutée(s).")
        return
    click.echo(f"Exécuteur de tâches démarré ({tasks.runner_identity()}).")
    try:
        tasks.Runner(app).run_forever()
    except KeyboardInterrupt:
        click.echo("Exécuteur de tâches arrêté.")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--no-scheduler", is_flag=True, help="Ne pas lancer les tâches planifiées.")
@at_option
@with_appcontext
def serve_command(host: str, port: int, no_scheduler: bool) -> None:
    """Sert le back office (développement / démonstration), avec les tâches planifiées."""
    from flask import current_app
    from werkzeug.serving import run_simple

    from backoffice import scheduler

    app = current_app._get_current_object()
    if not no_scheduler and scheduler.start_embedded(app):
        click.echo("Tâches planifiées lancées dans ce processus.")
    click.echo(f"Back office servi sur http://{host}:{port} (Ctrl+C pour arrêter).")
    # Flask ignores app.run() inside its own CLI: serve with Werkzeug directly.
    run_simple(host, port, app, threaded=True, use_reloader=False)


@click.command("bench")
@click.option("--scale", type=float, default=25, show_default=True,
              help="Échelle des données de démonstration (chargées si la base est vide).")
@click.option("--database", "database_url", default=None,
              help="URL de la base mesurée (défaut : celle de l'application).")
@click.option("--repeat", type=click.IntRange(min=1), default=30, show_default=True,
              help="Mesures de chaque cas (après un appel de préchauffage).")
@click.option("--only", default=None,
              help="Ne mesurer qu'un groupe (search, admin_lists, writes).")
@click.option("--cases", "case_filter", default=None,
              help="Ne mesurer que les cas dont le libellé contient ce texte (ex. « dépôt »).")
def bench_command(scale: float, database_url: str | None, repeat: int, only: str | None,
                  case_filter: str | None) -> None:
    """Mesure les performances (p50/p95/p99) à côté d'un pair naïf, dans le même passage."""
    from flask_migrate import upgrade

    from backoffice import bench, create_app, demo
    from backoffice.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url} if database_url else None)
    with app.app_context():
        upgrade()
        if demo.database_is_empty():
            click.echo(f"Base vide : chargement des données de démonstration (échelle {scale})…")
            click.echo(demo.generate(scale=scale, seed=20261122, echo=click.echo))
        dialect = db.engine.dialect.name
        click.echo(f"Base : {db.engine.url.render_as_string(hide_password=True)} ({dialect}), "
                   f"échelle {scale:g}, {repeat} mesures par cas")
    figures = bench.run(bench.Context(app=app, scale=scale, database=dialect, repeat=repeat),
                        only=only, cases=case_filter, out=click.echo)
    counts = bench.summary(figures)
    click.echo(f"\nCibles atteintes : {counts['cibles_atteintes']} sur {counts['cibles']} ; "
               f"pairs naïfs battus : {counts['pairs_battus']} sur {counts['pairs']}.")
    peak = bench.peak_rss_mb()  # the process serves every page of the run, as a web worker
    click.echo(f"Pic de mémoire du processus (RSS) : {peak:,.0f} Mo (cible ≤ 400 Mo "
               f"{'✔' if peak <= 400 else '✘'}).".replace(",", " "))


def register_commands(app: Flask) -> None:
    for command in (demo_data_command, demo_accounts_command, demo_code_command,
                    bootstrap_command, bench_command, jobs_group,
                    nir_group, scheduler_command, worker_command, serve_command):
        app.cli.add_command(command)


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Back office de l'offre de formation et des candidatures."""

"""The project's benchmark: ``backoffice bench`` (see ``cli.py``) measures, on a database
loaded with demo data at a given scale, each figure of the performance targets side by side
with a naive peer doing the same work, in the same run, interleaved (peer, project, peer,
project, …) so that both see the same machine load. It prints p50/p95/p99, the SQL
queries of one call and the ratio peer / project (above 1: the project is faster).

A group of measures is a module of this package with a function
``cases(context: Context) -> list[Case]``; ``GROUPS`` lists them in the order they run.
No test asserts a time: the tests run the benchmark at a tiny scale to check that it runs.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

GROUPS: tuple[str, ...] = ("search", "admin_lists", "writes")  # backoffice/bench/<group>.py


@dataclasses.dataclass
class Case:
    """One figure: ``project()`` and, if any, ``peer()`` do the same work (one call each)."""
    group: str  # French title of the group, e.g. « Recherche de l'offre »
    name: str  # French label of the measure
    project: Callable[[], Any]
    peer: Callable[[], Any] | None = None
    target_ms: float | None = None  # the p95 target, printed beside the figure
    peer_name: str = ""  # what the peer is, e.g. « LIKE '%…%' »
    repeat: int | None = None  # measures of this case, when fewer than the run's
    rows: int | None = None  # rows one call handles: the table shows rows per second
    cleanup: Callable[[], Any] | None = None  # called once after the measures (untimed)


@dataclasses.dataclass
class Context:
    app: Any  # the Flask application, on the measured database
    scale: float
    database: str  # dialect name: "sqlite" or "postgresql"
    repeat: int


@dataclasses.dataclass
class Figure:
    case: Case
    project: list[float]  # milliseconds
    peer: list[float]
    queries: int  # SQL statements of one project call

    @staticmethod
    def percentile(values: list[float], p: float) -> float | None:
        if not values:
            return None
        ordered = sorted(values)  # nearest rank
        return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]

    def p(self, which: str, p: float) -> float | None:
        return self.percentile(getattr(self, which), p)

    @property
    def ratio(self) -> float | None:
        peer, project = self.p("peer", 50), self.p("project", 50)
        return peer / project if peer is not None and project else None

    @property
    def meets_target(self) -> bool | None:
        if self.case.target_ms is None:
            return None
        return self.p("project", 95) <= self.case.target_ms


class QueryCounter:
    """Counts the SQL statements sent on ``engine`` (or on every engine: ``Engine``)
    while active."""

    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def _count(self, *_args, **_kwargs) -> None:
        self.count += 1

    def __enter__(self):
        self.count = 0
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


def _time(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def measure(case: Case, *, repeat: int, engine) -> Figure:
    """One warm-up call of each, then ``repeat`` interleaved calls of peer and project."""
    if case.peer is not None:
        case.peer()
    with QueryCounter(engine) as counter:
        case.project()
    figure = Figure(case, [], [], counter.count)
    for _ in range(min(repeat, case.repeat or repeat)):
        if case.peer is not None:
            figure.peer.append(_time(case.peer))
        figure.project.append(_time(case.project))
    if case.cleanup is not None:
        case.cleanup()
    return figure


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}".replace(",", " ") if value < 100 else \
        f"{value:,.0f}".replace(",", " ")


def table(figures: list[Figure], *, database: str) -> str:
    """The figures as a Markdown table (the README's performance section is made of them)."""
    lines = [f"| mesure ({database}) | p50 ms | p95 ms | p99 ms | SQL | cible p95 | "
             "pair naïf p50 / p95 ms | rapport |",
             "|---|---:|---:|---:|---:|---|---:|---:|"]
    for figure in figures:
        target = "" if figure.case.target_ms is None else (
            f"≤ {figure.case.target_ms:g} {'✔' if figure.meets_target else '✘'}")
        peer = "—" if not figure.peer else \
            f"{_ms(figure.p('peer', 50))} / {_ms(figure.p('peer', 95))}"
        ratio = "—" if figure.ratio is None else f"{figure.ratio:.1f}"
        name = figure.case.name
        if figure.case.rows is not None and figure.p("project", 50):
            per_second = figure.case.rows / figure.p("project", 50) * 1000
            name += f" : {figure.case.rows:,} lignes, {per_second:,.0f} lignes/s".replace(",", " ")
        lines.append(f"| {name} | {_ms(figure.p('project', 50))} | "
                     f"{_ms(figure.p('project', 95))} | {_ms(figure.p('project', 99))} | "
                     f"{figure.queries} | {target} | {peer} | {ratio} |")
    return "\n".join(lines)


def run(context: Context, *, only: str | None = None, cases: str | None = None,
        out=print) -> list[Figure]:
    """Measure every case of every group (or of the group named ``only``; only the cases
    whose label contains ``cases``, if given), printing each group's table as it ends."""
    from backoffice.extensions import db

    figures: list[Figure] = []
    for name in GROUPS:
        if only and only != name:
            continue
        module = importlib.import_module(f"backoffice.bench.{name}")
        with context.app.app_context():
            chosen = [case for case in module.cases(context)
                      if not cases or cases.lower() in case.name.lower()]
            engine = Engine  # every engine: a group may use a second application
            group = [measure(case, repeat=context.repeat, engine=engine) for case in chosen]
            db.session.remove()
        if group:
            out(f"\n### {group[0].case.group}\n")
            out(table(group, database=context.database))
        figures.extend(group)
    return figures


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MB (Linux: ``ru_maxrss`` in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(figures: list[Figure]) -> dict:
    """Counts for the end of the run: targets met, peers beaten."""
    with_target = [f for f in figures if f.meets_target is not None]
    with_peer = [f for f in figures if f.ratio is not None]
    return {"cibles": len(with_target), "cibles_atteintes": sum(
        f.meets_target for f in with_target), "pairs": len(with_peer),
        "pairs_battus": sum(f.ratio >= 1 for f in with_peer),
        "mediane": statistics.median([f.p("project", 50) for f in figures]) if figures else None}

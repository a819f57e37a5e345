"""The benchmark's search group (``backoffice bench --only search``) runs on demo data at a
tiny scale and prints its table: every query of the mix beside its naive peer, and the
search page over HTTP. No time is asserted."""
from __future__ import annotations

from backoffice import bench, clock, demo
from backoffice.bench import search as search_bench
from backoffice.extensions import db


def test_the_search_group_runs_and_prints_its_table(app):
    with clock.frozen(clock.parse_instant(search_bench.DEMO_INSTANT)):
        demo.generate(scale=0.01, seed=20261122, echo=lambda _line: None)
    lines: list[str] = []
    figures = bench.run(bench.Context(app=app, scale=0.01, database=db.engine.dialect.name,
                                      repeat=2), only="search", out=lines.append)
    output = "\n".join(lines)
    assert search_bench.GROUP in output
    names = [figure.case.name for figure in figures]
    assert len(names) == 16 and "page 200" in names and "un mot courant « vente »" in names
    for figure in figures:
        assert f"| {figure.case.name} |" in output
        assert len(figure.project) == 2 and figure.queries >= 1
    with_peer = [figure for figure in figures if figure.case.peer is not None]
    assert len(with_peer) == 13 and all(len(figure.peer) == 2 for figure in with_peer)
    # --cases: only the cases whose label holds the text
    chosen = bench.run(bench.Context(app=app, scale=0.01, database=db.engine.dialect.name,
                                     repeat=1), only="search", cases="VENTE", out=lambda _: 0)
    assert {figure.case.name for figure in chosen} == {n for n in names if "vente" in n}
    # The same sessions as the naive peer, where the naive LIKE means the same.
    with app.app_context():
        clock.set_now(clock.parse_instant(search_bench.DEMO_INSTANT))
        for criteria in (demo_criteria for demo_criteria in (
                search_bench.search.Criteria(), search_bench.search.Criteria(q="vente"),
                search_bench.search.Criteria(dispositif="HSP"))):
            total, ids = search_bench.naive(criteria)
            result = search_bench.project(criteria)
            assert (result.total, result.session_ids) == (total, list(ids))

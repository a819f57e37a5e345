"""The workflow diagrams of the « Workflows » page: laid out by Graphviz when ``dot`` is
installed, by our own drawing otherwise; in both, every state and transition is drawn and
no id repeats on the page (several diagrams share it)."""
from __future__ import annotations

import re
import shutil
from collections import Counter

import pytest

from backoffice import workflow, workflow_diagram


def _ids(svgs: list[str]) -> Counter:
    return Counter(id_ for svg in svgs for id_ in re.findall(r'\bid="([^"]+)"', svg))


@pytest.mark.parametrize("with_graphviz", [True, False])
def test_every_diagram_draws_its_states_and_transitions_with_unique_ids(
        monkeypatch, with_graphviz):
    if with_graphviz and not shutil.which("dot"):
        pytest.skip("Graphviz (dot) absent : apt-get install graphviz")
    if not with_graphviz:
        monkeypatch.setattr(workflow_diagram.shutil, "which", lambda _name: None)
    workflows = list(workflow.workflows().values())
    svgs = [workflow_diagram.render_svg(w) for w in workflows]
    for w, svg in zip(workflows, svgs):
        assert svg.startswith("<svg role=\"img\"") and svg.count("<svg") == 1
        assert f'aria-label="Diagramme du workflow {w.label}"'.replace("'", "&#x27;") in svg
        texts = set(re.findall(r">([^<>]+)</text>", svg))
        for code, state in w.states.items():
            assert code in texts
        for name in w.transitions:
            assert name in texts, (w.object_type, name)
        # Graphviz's own markers: the layout has no overlapping labels (the browser suite
        # measures them); here, that it is Graphviz's drawing or ours as asked.
        assert ('class="graph"' in svg) is with_graphviz
    repeated = [id_ for id_, count in _ids(svgs).items() if count > 1]
    assert repeated == []

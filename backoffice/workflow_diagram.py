"""Server-side SVG drawing of a workflow (the administration's « Workflows » page).

The layout is Graphviz's (``dot``, Debian package ``graphviz``): a real layered graph
layout that places the states, routes the arrows and puts each transition's label beside
its arrow without overlapping another label or box, left to right from the initial state.
``dot`` runs once per workflow definition (the SVG is cached by its DOT source) with a
timeout. Without ``dot`` on the machine (or if it fails), a simple drawing of our own is
served instead — states in columns by distance from the initial state, one arrow per
(source, transition) — and a warning is logged: the page still works, less readable.

Several diagrams share one page: every ``id`` of a drawing (and every reference to one) is
prefixed with ``wf-<object type>-``, so no id repeats. Each drawing is ``role="img"`` with
a French ``aria-label``; the table beside it on the page says the same in text.
"""
from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
from html import escape

from backoffice.workflow import Workflow

log = logging.getLogger(__name__)

DOT_TIMEOUT_SECONDS = 10
FONT = "DejaVu Sans,Arial,sans-serif"
INITIAL_FILL, STATE_FILL, FINAL_FILL = "#d4edda", "#e8f0fb", "#f1f1f1"
INK, LABEL_INK = "#1e2228", "#143766"


def render_svg(workflow: Workflow) -> str:
    svg = None
    if shutil.which("dot"):
        svg = _dot_to_svg(to_dot(workflow))
    if svg is None:
        log.warning("Graphviz (dot) indisponible : diagramme simplifié pour %s",
                    workflow.object_type)
        svg = _fallback_svg(workflow)
    return _finish(svg, workflow)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(workflow: Workflow) -> str:
    """The workflow as a Graphviz graph: one box per state (label, then code), one edge
    per (source, transition), labelled with the transition's name."""
    lines = ["digraph workflow {",
             f'  graph [rankdir=LR, nodesep=0.5, ranksep=0.9, fontname={_quote(FONT)}, '
             'bgcolor="transparent", pad=0.2];',
             f'  node [shape=box, style="rounded,filled", fontname={_quote(FONT)}, '
             f'fontsize=12, color="#2c3e50", fontcolor={_quote(INK)}, margin="0.15,0.08"];',
             f'  edge [fontname={_quote(FONT)}, fontsize=11, color="#555555", '
             f'fontcolor={_quote(LABEL_INK)}, arrowsize=0.7];']
    for code, state in workflow.states.items():
        fill = INITIAL_FILL if code == workflow.initial else (
            FINAL_FILL if state.final else STATE_FILL)
        width = ', penwidth=2.5' if state.final else ''
        lines.append(f"  {_quote(code)} [label={_quote(state.label + chr(10) + code)}, "
                     f"fillcolor={_quote(fill)}{width}];")
    for transition in workflow.transitions.values():
        for source in transition.sources:
            lines.append(f"  {_quote(source)} -> {_quote(transition.target)} "
                         f"[label={_quote(transition.name)}];")
    lines.append("}")
    return "\n".join(lines)


@functools.lru_cache(maxsize=64)
def _dot_to_svg(source: str) -> str | None:
    try:
        result = subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True,
                                text=True, timeout=DOT_TIMEOUT_SECONDS, check=True)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("Graphviz (dot) a échoué : %s", error)
        return None
    svg = result.stdout
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else None


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _finish(svg: str, workflow: Workflow) -> str:
    """Prefix the ids, drop comments and the drawing's own <title>, name the image."""
    prefix = f"wf-{workflow.object_type}-"
    svg = _COMMENT.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)
    svg = re.sub(r'<title>workflow</title>\s*', "", svg, count=1)
    label = escape(f"Diagramme du workflow {workflow.label}")
    return re.sub(r"<svg\b", f'<svg role="img" aria-label="{label}" class="bo-diagramme"',
                  svg, count=1)


# -- drawing without Graphviz -------------------------------------------------------------
BOX_W, BOX_H, COL_W, ROW_H, MARGIN = 190, 46, 300, 110, 30


def layers(workflow: Workflow) -> list[list[str]]:
    depth = {workflow.initial: 0}
    frontier = [workflow.initial]
    while frontier:
        following = []
        for code in frontier:
            for transition in workflow.transitions_from(code):
                if transition.target not in depth:
                    depth[transition.target] = depth[code] + 1
                    following.append(transition.target)
        frontier = following
    last = max(depth.values()) + 1
    columns: list[list[str]] = [[] for _ in range(last + 1)]
    for code in workflow.states:  # file order inside a column; unreachable states last
        columns[depth.get(code, last)].append(code)
    return [column for column in columns if column]


def _fallback_svg(workflow: Workflow) -> str:
    columns = layers(workflow)
    position = {code: (MARGIN + i * COL_W, MARGIN + j * ROW_H)
                for i, column in enumerate(columns) for j, code in enumerate(column)}
    width = MARGIN * 2 + (len(columns) - 1) * COL_W + BOX_W
    height = MARGIN * 2 + (max(len(c) for c in columns) - 1) * ROW_H + BOX_H + 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             '<defs><marker id="fleche" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    bend = 0
    for transition in workflow.transitions.values():
        for source in transition.sources:
            (x1, y1), (x2, y2) = position[source], position[transition.target]
            sx, sy = x1 + BOX_W, y1 + BOX_H / 2
            tx, ty = x2, y2 + BOX_H / 2
            if x2 <= x1:  # backwards or same column: loop below the boxes
                bend += 1
                sx, sy = x1 + BOX_W / 2, y1 + BOX_H
                tx, ty = x2 + BOX_W / 2 + 12, y2 + BOX_H
                low = max(sy, ty) + 25 + 6 * (bend % 4)
                path = f"M {sx} {sy} C {sx} {low}, {tx} {low}, {tx} {ty}"
                lx, ly = (sx + tx) / 2, low - 4
            else:
                mx = (sx + tx) / 2
                path = f"M {sx} {sy} C {mx} {sy}, {mx} {ty}, {tx} {ty}"
                lx, ly = mx, (sy + ty) / 2 - 4
            parts.append(f'<path d="{path}" fill="none" stroke="#777" stroke-width="1.3" '
                         f'marker-end="url(#fleche)"><title>{escape(transition.label)} — '
                         f'{escape(transition.actors_text)}</title></path>')
            parts.append(f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle" '
                         f'fill="{LABEL_INK}">{escape(transition.name)}</text>')
    for code, (x, y) in position.items():
        state = workflow.states[code]
        fill = INITIAL_FILL if code == workflow.initial else (
            FINAL_FILL if state.final else STATE_FILL)
        stroke_width = 3 if state.final else 1.5
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="10" '
                     f'fill="{fill}" stroke="#2c3e50" stroke-width="{stroke_width}"/>')
        parts.append(f'<text x="{x + BOX_W / 2}" y="{y + 19}" text-anchor="middle" '
                     f'font-weight="bold">{escape(state.label[:30])}</text>')
        parts.append(f'<text x="{x + BOX_W / 2}" y="{y + 35}" text-anchor="middle" '
                     f'fill="#444">{escape(code)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)

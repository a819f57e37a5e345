"""Server-side SVG drawing of a workflow: states in columns by distance from the initial
state, one arrow per (source, transition), labelled with the transition's name."""
from __future__ import annotations

from html import escape

from backoffice.workflow import Workflow

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
    columns: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for code in workflow.states:  # file order inside a column
        columns[depth[code]].append(code)
    return columns


def render_svg(workflow: Workflow) -> str:
    columns = layers(workflow)
    position = {code: (MARGIN + i * COL_W, MARGIN + j * ROW_H)
                for i, column in enumerate(columns) for j, code in enumerate(column)}
    width = MARGIN * 2 + (len(columns) - 1) * COL_W + BOX_W
    height = MARGIN * 2 + (max(len(c) for c in columns) - 1) * ROW_H + BOX_H + 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Diagramme du workflow {escape(workflow.label)}" '
             f'font-family="sans-serif" font-size="12">',
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
            parts.append(f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle" fill="#1a4f8b">'
                         f'{escape(transition.name)}</text>')
    for code, (x, y) in position.items():
        state = workflow.states[code]
        fill = "#d4edda" if code == workflow.initial else ("#f1f1f1" if state.final else "#e8f0fb")
        stroke_width = 3 if state.final else 1.5
        parts.append(f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="10" '
                     f'fill="{fill}" stroke="#2c3e50" stroke-width="{stroke_width}"/>')
        parts.append(f'<text x="{x + BOX_W / 2}" y="{y + 19}" text-anchor="middle" '
                     f'font-weight="bold">{escape(state.label[:30])}</text>')
        parts.append(f'<text x="{x + BOX_W / 2}" y="{y + 35}" text-anchor="middle" '
                     f'fill="#555">{escape(code)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)

"""Draw one cell of a spec like EfficientDet's Figure 2: levels as rows, data flowing left to right.

Rows are pyramid levels (the coarsest on top), columns the longest-path depth of each vertex
(:func:`graphspec.node_depths`), so cell inputs sit in the left column. Fusion nodes are circles
filled by merge method, cell inputs rounded squares; cell outputs have a bold ring and an arrow
leaving to the right. Edges are coloured by direction (top-down, bottom-up, same level) and
residual edges dashed. An edge along a row that would run through other nodes of the row takes a
lane between two rows; other edges bend just enough to clear the nodes between their ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from effdet_graph.atomic import atomic_output
from graphspec import Spec, level_name, node_depths
from graphspec.errors import InputError

FORMATS = {".svg": "svg", ".png": "png"}
POINTS_PER_UNIT = 0.8 * 72  # lengths below are in units of the narrowest column step
RADIUS = 0.22  # fusion node; cell inputs are squares of about the same size
CLEARANCE = 0.27  # how close to a node's centre an edge between other nodes may pass
ROW_STEP = 0.8  # least vertical distance of two levels
SLOT_STEP = 0.6  # horizontal distance of nodes that share a level and a depth
TRACK_STEP = 0.09  # vertical distance of lanes that share the space between two rows
LANE_INSET = 0.12  # free space between a node and the nearest lane
CORNER = 0.1  # radius of a lane's rounded corners
BENDS = [0.0] + [sign * k * 0.05 for k in range(1, 13) for sign in (-1, 1)]  # arc3 ``rad``, by |rad|
METHOD_COLOURS = {
    "sum": ("#dfe3e8", "sum"),
    "unbounded": ("#c6dbef", "unbounded weights"),
    "softmax": ("#fbc6d0", "softmax fusion"),
    "fast_normalized": ("#fdd49e", "fast normalized fusion"),
    "channel_softmax": ("#d4b9da", "per-channel softmax"),
    "channel_fast_normalized": ("#fee391", "per-channel fast normalized"),
    "global_pool_attention": ("#b8e186", "global-pool attention"),
}
DIRECTION_COLOURS = {
    "top-down": ("#2c6fbb", "top-down (upsample)"),
    "bottom-up": ("#c0392b", "bottom-up (downsample)"),
    "same": ("#6c3483", "same level"),
}
INK = "#333333"


@dataclass
class _Vertex:
    id: str
    row: int
    x: float
    is_input: bool
    method: str
    y: float = 0.0

    @property
    def xy(self) -> tuple[float, float]:
        return self.x, self.y


@dataclass
class _Edge:
    source: _Vertex
    target: _Vertex
    residual: bool
    lane: tuple[int, int, int] | None = None  # (gap below row k, +1 above / -1 below its row, track)
    points: np.ndarray | None = None  # the route, sampled
    rad: float = 0.0  # arc3 bend of an edge without a lane
    lane_y: float = 0.0  # height of the lane of an edge with one

    @property
    def direction(self) -> str:
        if self.target.row == self.source.row:
            return "same"
        return "bottom-up" if self.target.row > self.source.row else "top-down"


def draw_spec(spec: Spec, path: str | Path) -> None:
    """Write a picture of one cell of ``spec`` to ``path`` (``.svg`` or ``.png``, chosen by suffix).

    The file is written atomically: a failure leaves no file, and an existing one untouched.

    Raises:
        InputError: the suffix is neither ``.svg`` nor ``.png``.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: cannot draw to a '{path.suffix}' file; supported: .svg, .png")
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "effdet-graph"}):
        figure = _figure(spec)
        with atomic_output(path) as tmp:
            figure.savefig(
                tmp,
                format=fmt,
                dpi=200,
                bbox_inches="tight",
                pad_inches=0.05,
                metadata={"Date": None} if fmt == "svg" else None,
            )


def _layout(spec: Spec) -> tuple[dict[str, _Vertex], list[_Edge]]:
    """Vertices placed in columns by depth (widened where several share a level and a depth, and where
    edges to the next column climb steeply) and the edges between them; ``y`` is set by :func:`_place_rows`."""
    depths = node_depths(spec)
    rows = {level: i for i, level in enumerate(spec.levels)}
    by_id = spec.node_by_id
    cells: dict[tuple[int, int], list[str]] = {}
    for level in spec.levels:
        cells.setdefault((0, rows[level]), []).append(level_name(level))
    for node in spec.nodes:
        cells.setdefault((depths[node.id], rows[node.level]), []).append(node.id)
    columns = max(depths.values()) + 1
    slots, climb = [1] * columns, [0] * columns
    for (depth, _), ids in cells.items():
        slots[depth] = max(slots[depth], len(ids))
    row_of = {vertex_id: row for (_, row), ids in cells.items() for vertex_id in ids}
    pairs = [(ref, node.id) for node in spec.nodes for ref in node.inputs + node.residual]
    for ref, node_id in pairs:
        if depths[node_id] == depths[ref] + 1:
            climb[depths[ref]] = max(climb[depths[ref]], abs(row_of[node_id] - row_of[ref]))
    starts = [0.0]
    for depth in range(columns - 1):
        # a straight edge climbing k rows to the next column passes its neighbours at CLEARANCE
        steep = CLEARANCE * climb[depth] * ROW_STEP / math.sqrt(ROW_STEP**2 - CLEARANCE**2)
        starts.append(starts[-1] + (slots[depth] - 1) * SLOT_STEP + max(1.0, steep))
    vertices: dict[str, _Vertex] = {}
    for (depth, row), ids in sorted(cells.items()):
        for i, vertex_id in enumerate(ids):
            x = starts[depth] + ((slots[depth] - len(ids)) / 2 + i) * SLOT_STEP
            spec_node = by_id.get(vertex_id)  # None for a cell input
            if spec_node is None:
                method = ""
            else:
                method = spec_node.fusion if spec_node.merge == "weighted_sum" else spec_node.merge
            vertices[vertex_id] = _Vertex(vertex_id, row, x, spec_node is None, method)
    edges = [_Edge(vertices[ref], vertices[node.id], False) for node in spec.nodes for ref in node.inputs]
    edges += [_Edge(vertices[ref], vertices[node.id], True) for node in spec.nodes for ref in node.residual]
    return vertices, edges


def _assign_lanes(vertices: dict[str, _Vertex], edges: list[_Edge]) -> None:
    """Give every edge that runs along a row past other nodes of the row a lane: the lowest free track
    on its row's side of the gap below or above the row (tracks are stacked outwards from each row)."""
    tracks: dict[tuple[int, int], list[list[tuple[float, float]]]] = {}
    for edge in edges:
        a, b = edge.source, edge.target
        if a.row != b.row or not any(v.row == a.row and a.x < v.x < b.x for v in vertices.values()):
            continue
        span = (a.x - 0.1, b.x + 0.1)
        options = []
        for gap, side in ((a.row + 1, 1), (a.row, -1)):
            used = tracks.setdefault((gap, side), [])
            free = next(
                (t for t, spans in enumerate(used) if all(span[1] < s or e < span[0] for s, e in spans)), len(used)
            )
            crowd = len(used) + len(tracks.get((gap, -side), []))
            options.append(((free, crowd, -side), gap, side, free))  # lowest track, emptier gap, above first
        _, gap, side, free = min(options)
        used = tracks[gap, side]
        if free == len(used):
            used.append([])
        used[free].append(span)
        edge.lane = (gap, side, free)


def _place_rows(vertices: dict[str, _Vertex], edges: list[_Edge]) -> None:
    """Set ``y`` of every vertex, rows far enough apart for the lanes between them, and of every lane."""
    counts: dict[tuple[int, int], int] = {}
    for edge in edges:
        if edge.lane:
            gap, side, track = edge.lane
            counts[gap, side] = max(counts.get((gap, side), 0), track + 1)
    rows = max(v.row for v in vertices.values()) + 1
    step = max(
        [ROW_STEP]
        + [
            2 * (RADIUS + LANE_INSET) + (counts.get((gap, 1), 0) + counts.get((gap, -1), 0) - 1) * TRACK_STEP
            for gap in range(1, rows)
        ]
    )
    for vertex in vertices.values():
        vertex.y = vertex.row * step
    for edge in edges:
        if edge.lane:
            _, side, track = edge.lane
            edge.lane_y = edge.source.y + side * (RADIUS + LANE_INSET + track * TRACK_STEP)


def _lane_path(edge: _Edge) -> MplPath:
    """Up (or down) from the source to its lane, along it, and into the target."""
    (x1, y0), x2, lane = edge.source.xy, edge.target.x, edge.lane_y
    s = 1.0 if lane > y0 else -1.0
    c = min(CORNER, abs(lane - y0) / 2)
    verts = [
        (x1, y0),
        (x1, lane - s * c),
        (x1, lane),
        (x1 + c, lane),
        (x2 - c, lane),
        (x2, lane),
        (x2, lane - s * c),
        (x2, y0 + s * (RADIUS + 0.02)),
    ]
    codes = [
        MplPath.MOVETO,
        MplPath.LINETO,
        MplPath.CURVE3,
        MplPath.CURVE3,
        MplPath.LINETO,
        MplPath.CURVE3,
        MplPath.CURVE3,
        MplPath.LINETO,
    ]
    return MplPath(verts, codes)


def _arc(a: tuple[float, float], b: tuple[float, float], rad: float, samples: int = 40) -> np.ndarray:
    """Points of matplotlib's ``arc3`` connection (a quadratic Bezier) from ``a`` to ``b``."""
    (x1, y1), (x2, y2) = a, b
    control = np.array([(x1 + x2) / 2 + rad * (y2 - y1), (y1 + y2) / 2 - rad * (x2 - x1)])
    t = np.linspace(0.0, 1.0, samples)[:, None]
    return (1 - t) ** 2 * np.array(a) + 2 * (1 - t) * t * control + t**2 * np.array(b)


def _route_arc(edge: _Edge, vertices: dict[str, _Vertex], routed: np.ndarray) -> None:
    """Pick the straightest ``arc3`` bend that clears every other node, preferring bends that keep
    apart from the ``routed`` points of other edges."""
    others = np.array([v.xy for v in vertices.values() if v not in (edge.source, edge.target)]).reshape(-1, 2)
    best: tuple[float, float, np.ndarray] | None = None  # (score, rad, points)
    for rad in BENDS:
        if best is not None and best[0] <= abs(rad):
            break
        points = _arc(edge.source.xy, edge.target.xy, rad)
        gap = np.min(np.linalg.norm(points[:, None] - others[None], axis=-1), initial=np.inf)
        inner = points[6:-6]
        shared = np.mean(np.min(np.linalg.norm(inner[:, None] - routed[None], axis=-1), axis=1, initial=np.inf) < 0.08)
        score = abs(rad) + shared + (0.0 if gap >= CLEARANCE else 100.0 - gap)
        if best is None or score < best[0]:
            best = (score, rad, points)
    if best is None:
        raise RuntimeError("BENDS is empty: no arc was tried")
    edge.rad, edge.points = best[1], best[2]


def _route(vertices: dict[str, _Vertex], edges: list[_Edge]) -> None:
    """Route every edge: lanes first, then arcs in spec order."""
    _assign_lanes(vertices, edges)
    _place_rows(vertices, edges)
    for edge in edges:
        if edge.lane:
            edge.points = np.asarray(_lane_path(edge).interpolated(8).vertices)
    for edge in edges:
        if not edge.lane:
            routed = [e.points[6:-6] for e in edges if e.points is not None] or [np.empty((0, 2))]
            _route_arc(edge, vertices, np.concatenate(routed))


def _points(edge: _Edge) -> np.ndarray:
    """The sampled route of ``edge``, which :func:`_route` has set."""
    if edge.points is None:
        raise RuntimeError(f"edge {edge.source.id} -> {edge.target.id} was not routed")
    return edge.points


def _figure(spec: Spec) -> Figure:
    """The whole picture: vertices, routed edges, output arrows, title and legend, to scale."""
    vertices, edges = _layout(spec)
    _route(vertices, edges)
    outputs = set(spec.outputs.values())
    right = max(v.x for v in vertices.values()) + 0.8
    routes = [_points(edge) for edge in edges]
    points = np.concatenate(routes + [np.array([[right, v.y] for v in vertices.values()])])
    xlim = (points[:, 0].min() - 0.35, right + 0.05)
    ylim = (points[:, 1].min() - 0.35, points[:, 1].max() + 0.35)
    size = ((xlim[1] - xlim[0]) * POINTS_PER_UNIT / 72, (ylim[1] - ylim[0]) * POINTS_PER_UNIT / 72)
    figure = Figure(figsize=size)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.axis("off")
    for vertex in vertices.values():
        _draw_vertex(ax, vertex, vertex.id in outputs)
    arrow: dict[str, Any] = dict(arrowstyle="-|>", mutation_scale=7, linewidth=0.8, zorder=1)
    for edge in edges:
        linestyle = (0, (3, 2)) if edge.residual else "-"
        style: dict[str, Any] = dict(arrow, color=DIRECTION_COLOURS[edge.direction][0], linestyle=linestyle)
        if edge.lane:
            ax.add_patch(FancyArrowPatch(path=_lane_path(edge), **style))
        else:
            ax.add_patch(
                FancyArrowPatch(
                    edge.source.xy,
                    edge.target.xy,
                    connectionstyle=f"arc3,rad={edge.rad:.2f}",
                    shrinkA=(RADIUS + 0.02) * POINTS_PER_UNIT,
                    shrinkB=(RADIUS + 0.02) * POINTS_PER_UNIT,
                    **style,
                )
            )
    for node_id in sorted(outputs):  # a fixed patch order: the same SVG bytes in every process
        vertex = vertices[node_id]
        clear = not any(v.row == vertex.row and v.x > vertex.x for v in vertices.values())
        end = right if clear else vertex.x + RADIUS + 0.3
        ax.add_patch(FancyArrowPatch((vertex.x + RADIUS, vertex.y), (end, vertex.y), color=INK, **arrow))
    ax.set_title(f"{spec.name}: width {spec.width}, cell \u00d7{spec.repeats}", fontsize=9, pad=4)
    handles = _legend(spec, vertices, edges)
    lines = math.ceil(len(handles) / max(2, int(size[0] / 1.6)))
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        frameon=False,
        fontsize=7,
        ncol=math.ceil(len(handles) / lines),
        handlelength=1.8,
        columnspacing=1.2,
    )
    return figure


def _draw_vertex(ax: Axes, vertex: _Vertex, is_output: bool) -> None:
    """A rounded square for a cell input, a circle filled by merge method for a node; the id inside."""
    if vertex.is_input:
        side = 1.6 * RADIUS
        ax.add_patch(
            FancyBboxPatch(
                (vertex.x - side / 2, vertex.y - side / 2),
                side,
                side,
                boxstyle="round,pad=0.02,rounding_size=0.06",
                facecolor="white",
                edgecolor=INK,
                linewidth=0.9,
                zorder=2,
            )
        )
    else:
        ax.add_patch(
            Circle(
                vertex.xy,
                RADIUS,
                facecolor=METHOD_COLOURS[vertex.method][0],
                edgecolor=INK,
                linewidth=1.8 if is_output else 0.7,
                zorder=2,
            )
        )
    fontsize = min(6.0, 34.0 / len(vertex.id))
    ax.text(
        vertex.x,
        vertex.y,
        vertex.id,
        ha="center",
        va="center",
        fontsize=fontsize,
        zorder=3,
        fontweight="bold" if vertex.is_input else "normal",
    )


def _legend(spec: Spec, vertices: dict[str, _Vertex], edges: list[_Edge]) -> list[Line2D]:
    """Legend entries for what this picture shows: inputs/outputs, merge methods, edge kinds."""
    marker: dict[str, Any] = dict(linestyle="none", markersize=8, markeredgecolor=INK)
    handles = [
        Line2D([], [], marker="s", markerfacecolor="white", markeredgewidth=0.9, label="cell input", **marker),
        Line2D([], [], marker="o", markerfacecolor="white", markeredgewidth=1.8, label="cell output", **marker),
    ]
    for method in sorted({v.method for v in vertices.values() if not v.is_input}, key=list(METHOD_COLOURS).index):
        colour, label = METHOD_COLOURS[method]
        handles.append(Line2D([], [], marker="o", markerfacecolor=colour, markeredgewidth=0.7, label=label, **marker))
    directions = {edge.direction for edge in edges}
    for direction in (d for d in DIRECTION_COLOURS if d in directions):
        colour, label = DIRECTION_COLOURS[direction]
        handles.append(Line2D([], [], color=colour, linewidth=1.0, label=label))
    if any(node.residual for node in spec.nodes):
        handles.append(Line2D([], [], color=INK, linewidth=1.0, linestyle=(0, (3, 2)), label="residual"))
    return handles

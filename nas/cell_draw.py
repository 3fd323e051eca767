"""A picture of a dynamic cell: its DAG drawn with matplotlib alone (no graphviz binary).

Left to right by depth: the three inputs (D_k, the fused fast features, the fast features
of frame t), then each node with its two op boxes just before it, then the output (sum,
concat or residual). Edges take the colour of the state they read, so a long edge can be
followed past the columns it crosses; ``none`` ops, inputs never read and nodes never
computed (``Genotype.live_states``) are grey and dashed, ops that also read F_t and F_k
(gated_conv, warp, tdiff) are orange. ``layout_cell`` places every box (in
inches), ``draw_cell`` renders the layout to SVG and PNG.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath

from search_spaces.genotype import Genotype
from search_spaces.ops import OPS_READING_FAST

INPUT_W, INPUT_H, INPUT_GAP = 1.9, 0.66, 0.5
OP_W, OP_H, OP_GAP = 1.1, 0.3, 0.14
NODE_W, NODE_H = 0.8, 0.44
OUTPUT_W, OUTPUT_H = 2.1, 0.8
EDGE_GAP = 0.75  # horizontal room for arrows between columns
SLOT_GAP = 0.4  # vertical room between two nodes of one column
MARGIN, TITLE_H, LEGEND_H = 0.3, 0.75, 0.55
LANE_H = 0.25  # room above and below the boxes for routed edges
LANE_PAD, LANE_SPACING = 0.07, 0.12  # a lane's clearance from boxes and from other lanes

INPUT_TEXT = {
    0: r"$D_k$" + "\nslow state, key frame",
    1: "fused fast\n{fusion}",
    2: r"$F_t$" + "\nfast, frame t (beta {beta})",
}
OUTPUT_TEXT = {
    "sum": "output: sum\n" + r"$\hat{D}_t = \Sigma$ leaves",
    "concat": "output: concat\n" + r"$\hat{D}_t$ = BN(1x1 conv([leaves]))",
    "residual": "output: residual\n" + r"$\hat{D}_t = D_k + g \cdot \Sigma$ leaves",
}
STATE_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
NONE_GREY = "#9a9a9a"


@dataclass(frozen=True)
class Box:
    """A labelled rectangle, centre (x, y), in inches."""

    x: float
    y: float
    w: float
    h: float
    text: str
    kind: str  # input, unused_input, op, none_op, motion_op, node, unused_node, output

    def left(self) -> tuple[float, float]:
        return self.x - self.w / 2, self.y

    def right(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y

    def overlaps(self, other: Box) -> bool:
        return (
            abs(self.x - other.x) < (self.w + other.w) / 2
            and abs(self.y - other.y) < (self.h + other.h) / 2
        )


@dataclass(frozen=True)
class Edge:
    """An arrow from ``source``'s right side to ``target``'s left side along ``points``."""

    source: str
    target: str
    colour: str
    dashed: bool = False
    points: tuple[tuple[float, float], ...] = ()


@dataclass
class CellLayout:
    """Boxes keyed ``input:0..2``, ``node:k``, ``op:k:j`` (node k's op j), ``output``."""

    width: float
    height: float
    title: str
    boxes: dict[str, Box] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)


def inputs_read(genotype: Genotype) -> set[int]:
    """Cell inputs the output depends on: through an op other than ``none`` (as
    ``used_inputs``), or D_k directly in a residual output."""
    return genotype.used_inputs() | ({0} if genotype.output == "residual" else set())


def node_depths(genotype: Genotype) -> list[int]:
    """Depth of each node: 1 + the deepest state it reads (inputs are depth 0)."""
    depth = [0, 0, 0]
    for node in genotype.nodes:
        depth.append(1 + max(depth[i] for i in node.inputs))
    return depth[3:]


def state_colour(index: int) -> str:
    return STATE_COLOURS[index % len(STATE_COLOURS)]


def layout_cell(genotype: Genotype, subtitle: str = "") -> CellLayout:
    """Every box and edge of ``genotype``'s picture: columns by depth, no two boxes
    overlapping, edges routed around the boxes of the columns they cross."""
    depths = node_depths(genotype)
    columns = max(depths)
    by_depth = {d: [k for k, dk in enumerate(depths) if dk == d] for d in range(1, columns + 1)}
    slot = 2 * OP_H + OP_GAP + SLOT_GAP  # one node and its two op boxes
    inputs_h = 3 * INPUT_H + 2 * INPUT_GAP
    body = max(inputs_h, max(len(ks) for ks in by_depth.values()) * slot) + 2 * LANE_H
    x_input = MARGIN + INPUT_W / 2
    column_w = EDGE_GAP + OP_W + EDGE_GAP + NODE_W
    width = x_input + INPUT_W / 2 + columns * column_w + EDGE_GAP + OUTPUT_W + MARGIN
    height = TITLE_H + body + LEGEND_H + 2 * MARGIN
    middle = MARGIN + LEGEND_H + body / 2
    title = (
        f"alpha {genotype.alpha} (key frame every {genotype.alpha})  ·  beta {genotype.beta}  ·  "
        f"fusion {genotype.fusion}  ·  output {genotype.output}"
    )
    layout = CellLayout(width, height, f"{title}\n{subtitle}" if subtitle else title)
    boxes, edges = layout.boxes, []

    used = inputs_read(genotype)
    live = genotype.live_states()
    for i in range(3):
        y = middle + (1 - i) * (INPUT_H + INPUT_GAP)
        text = INPUT_TEXT[i].format(fusion=genotype.fusion, beta=genotype.beta)
        kind = "input" if i in used else "unused_input"
        boxes[f"input:{i}"] = Box(x_input, y, INPUT_W, INPUT_H, text, kind)

    for d in range(1, columns + 1):
        x_op = x_input + INPUT_W / 2 + (d - 1) * column_w + EDGE_GAP + OP_W / 2
        x_node = x_op + OP_W / 2 + EDGE_GAP + NODE_W / 2
        ks = by_depth[d]
        for row, k in enumerate(ks):
            y = middle + ((len(ks) - 1) / 2 - row) * slot
            node = genotype.nodes[k]
            kind = "node" if 3 + k in live else "unused_node"  # never computed
            boxes[f"node:{k}"] = Box(x_node, y, NODE_W, NODE_H, f"node {k}", kind)
            # the op reading the higher state sits on top: fewer crossing edges
            order = sorted((0, 1), key=lambda j: -boxes[_state_key(node.inputs[j])].y)
            for place, j in enumerate(order):
                y_op = y + (OP_H + OP_GAP) / 2 * (1 if place == 0 else -1)
                op, source = node.ops[j], node.inputs[j]
                kind = "none_op" if op == "none" else "op"
                kind = "motion_op" if op in OPS_READING_FAST else kind
                boxes[f"op:{k}:{j}"] = Box(x_op, y_op, OP_W, OP_H, op, kind)
                colour = NONE_GREY if op == "none" else state_colour(source)
                dashed = op == "none"
                edges.append(Edge(_state_key(source), f"op:{k}:{j}", colour, dashed))
                edges.append(Edge(f"op:{k}:{j}", f"node:{k}", colour, dashed))

    x_out = width - MARGIN - OUTPUT_W / 2
    boxes["output"] = Box(x_out, middle, OUTPUT_W, OUTPUT_H, OUTPUT_TEXT[genotype.output], "output")
    for leaf in genotype.leaf_nodes():
        edges.append(Edge(_state_key(leaf), "output", state_colour(leaf)))
    if genotype.output == "residual":
        edges.append(Edge("input:0", "output", state_colour(0), dashed=True))
    lanes: list[tuple[float, float, float]] = []  # (y, x from, x to) of routed edges
    layout.edges = [route(edge, boxes, lanes) for edge in edges]
    return layout


def _state_key(index: int) -> str:
    return f"input:{index}" if index < 3 else f"node:{index - 3}"


def route(edge: Edge, boxes: dict[str, Box], lanes: list[tuple[float, float, float]]) -> Edge:
    """``edge`` with its points: straight when no box stands between its ends, else through
    a horizontal lane free of the boxes (and of earlier lanes) of the columns it crosses."""
    (xs, ys), (xt, yt) = boxes[edge.source].right(), boxes[edge.target].left()
    between = [b for b in boxes.values() if b.x - b.w / 2 > xs and b.x + b.w / 2 < xt]
    if not between:
        return replace(edge, points=((xs, ys), (xt, yt)))
    xa = min(b.x - b.w / 2 for b in between) - LANE_PAD
    xb = max(b.x + b.w / 2 for b in between) + LANE_PAD
    blocked = [(b.y - b.h / 2 - LANE_PAD, b.y + b.h / 2 + LANE_PAD) for b in between]
    blocked += [(y - LANE_SPACING, y + LANE_SPACING) for y, x0, x1 in lanes if x0 < xb and xa < x1]
    lane = free_y((ys + yt) / 2, blocked)
    lanes.append((lane, xa, xb))
    return replace(edge, points=((xs, ys), (xa, lane), (xb, lane), (xt, yt)))


def free_y(wanted: float, blocked: list[tuple[float, float]]) -> float:
    """The y nearest ``wanted`` outside every blocked interval."""
    candidates = [wanted] + [y for interval in blocked for y in interval]
    free = [y for y in candidates if not any(lo < y < hi for lo, hi in blocked)]
    return min(free, key=lambda y: abs(y - wanted))


STYLE = {  # kind -> (face, edge colour, line style)
    "input": ("#dbe8f6", "#35608f", "solid"),
    "unused_input": ("#f2f2f2", NONE_GREY, "dashed"),
    "op": ("#eef3fb", "#5a6f8c", "solid"),
    "motion_op": ("#ffd8a8", "#c46a00", "solid"),
    "none_op": ("#ffffff", NONE_GREY, "dashed"),
    "node": ("#fff6cc", "#a08600", "solid"),
    "unused_node": ("#f2f2f2", NONE_GREY, "dashed"),
    "output": ("#e3f4e1", "#2f7a2a", "solid"),
}
LEGEND = (  # two lines: one would overflow the picture of a shallow cell
    "a node sums its two ops  ·  edges take the colour of the state they read\n"
    "orange ops also read $F_t$ and $F_k$  ·  grey dashed: none (adds nothing), unused inputs/nodes"
)


def render(layout: CellLayout, dpi: int = 110) -> Figure:
    """The layout as a matplotlib figure (no pyplot: nothing global changes)."""
    fig = Figure(figsize=(layout.width, layout.height), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, layout.width)
    ax.set_ylim(0, layout.height)
    ax.set_axis_off()
    for box in layout.boxes.values():
        face, edge, style = STYLE[box.kind]
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.w / 2, box.y - box.h / 2),
                box.w,
                box.h,
                boxstyle="round,pad=0,rounding_size=0.08",
                facecolor=face,
                edgecolor=edge,
                linestyle=style,
                linewidth=1.2,
                zorder=3,
            )
        )
        size = 9 if box.kind in ("op", "motion_op", "none_op") else 10
        colour = NONE_GREY if box.kind in ("none_op", "unused_input", "unused_node") else "#1a1a1a"
        ax.text(
            box.x, box.y, box.text, ha="center", va="center", fontsize=size, color=colour, zorder=4
        )
    for edge in layout.edges:
        ax.add_patch(
            FancyArrowPatch(
                path=MplPath(edge.points),
                arrowstyle="-|>",
                mutation_scale=11,
                color=edge.colour,
                linestyle="--" if edge.dashed else "-",
                linewidth=1.3,
                zorder=2,
            )
        )
    top = layout.height - MARGIN - TITLE_H / 2
    ax.text(layout.width / 2, top, layout.title, ha="center", va="center", fontsize=11)
    ax.text(
        layout.width / 2,
        MARGIN + LEGEND_H / 2,
        LEGEND,
        ha="center",
        va="center",
        fontsize=8.5,
        color="#555555",
    )
    return fig


def draw_cell(genotype: Genotype, stem: Path, subtitle: str = "") -> list[Path]:
    """Write ``stem``.svg and ``stem``.png (text kept as text in the SVG); return the paths."""
    fig = render(layout_cell(genotype, subtitle))
    paths = [stem.with_name(f"{stem.name}.svg"), stem.with_name(f"{stem.name}.png")]
    stem.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "cell"}):
        for path in paths:
            # no date in the metadata: the same cell gives the same files
            metadata = {"Date": None} if path.suffix == ".svg" else {}
            fig.savefig(path, metadata=metadata, facecolor="white")
    return paths


def cell_subtitle(data: dict) -> str:
    """A cell file's measured figures, for under the title (empty for a bare genotype)."""
    metrics = data.get("metrics") or {}
    parts = [
        f"{name} {metrics[key]:.4f}"
        for key, name in (
            ("quality", "quality"),
            ("copy_quality", "copy baseline"),
            ("gflops", "GFLOPs/frame"),
        )
        if isinstance(metrics.get(key), (int, float))
    ]
    dataset = (data.get("provenance") or {}).get("dataset")
    if dataset and parts:
        parts.append(f"on {dataset}")
    return "  ·  ".join(parts)

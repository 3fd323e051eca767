"""The picture of a cell: a box per input, node and op, the output, edges where the genotype
says, nothing drawn over anything else; files written; a bad cell file is one clear error."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from nas.cell_draw import LEGEND_H, MARGIN, TITLE_H, Box, draw_cell, layout_cell
from nas.export import main as export_main
from search_spaces.genotype import Genotype, Node, copy_genotype
from search_spaces.space import SearchSpace
from tests.fixtures_data import CELL


def expected_edges(genotype: Genotype) -> set[tuple[str, str]]:
    state = lambda i: f"input:{i}" if i < 3 else f"node:{i - 3}"  # noqa: E731
    edges = set()
    for k, node in enumerate(genotype.nodes):
        for j, source in enumerate(node.inputs):
            edges |= {(state(source), f"op:{k}:{j}"), (f"op:{k}:{j}", f"node:{k}")}
    edges |= {(state(leaf), "output") for leaf in genotype.leaf_nodes()}
    if genotype.output == "residual":
        edges.add(("input:0", "output"))
    return edges


@pytest.mark.parametrize("genotype", [Genotype.load(CELL), copy_genotype()], ids=["docs", "copy"])
def test_a_box_per_input_node_and_op_and_an_edge_where_the_genotype_says(genotype):
    layout = layout_cell(genotype)
    n = len(genotype.nodes)
    assert set(layout.boxes) == (
        {f"input:{i}" for i in range(3)}
        | {f"node:{k}" for k in range(n)}
        | {f"op:{k}:{j}" for k in range(n) for j in range(2)}
        | {"output"}
    )
    for k, node in enumerate(genotype.nodes):
        assert [layout.boxes[f"op:{k}:{j}"].text for j in range(2)] == list(node.ops)
    assert {(e.source, e.target) for e in layout.edges} == expected_edges(genotype)
    assert genotype.output in layout.boxes["output"].text


def test_columns_follow_depth_and_unused_inputs_are_marked():
    genotype = Genotype.load(CELL)  # a chain: node k reads node k - 1
    layout = layout_cell(genotype)
    xs = [layout.boxes[f"node:{k}"].x for k in range(4)]
    assert xs == sorted(xs) and len(set(xs)) == 4
    copy = layout_cell(copy_genotype())  # reads only D_k
    kinds = [copy.boxes[f"input:{i}"].kind for i in range(3)]
    assert kinds == ["input", "unused_input", "unused_input"]
    # a residual output reads D_k itself, whatever its ops read
    fast_only = Genotype(4, "1/4", "time_to_channel", (Node((2, 1), ("tdiff", "none")),))
    for output, kind in (("sum", "unused_input"), ("residual", "input")):
        layout = layout_cell(replace(fast_only, output=output))
        assert layout.boxes["input:0"].kind == kind
    # node 0 is read by tdiff alone: never computed, and so the fused input is never read
    nodes = (Node((1, 1), ("conv3x3", "sep3x3")), Node((3, 0), ("tdiff", "skip")))
    layout = layout_cell(Genotype(4, "1/4", "time_to_channel", nodes))
    assert [layout.boxes[f"node:{k}"].kind for k in range(2)] == ["unused_node", "node"]
    assert [layout.boxes[f"input:{i}"].kind for i in range(3)] == [
        "input",
        "unused_input",
        "input",
    ]


def crosses(start, end, box: Box) -> bool:
    """Whether the segment passes through the inside of ``box`` (sampled finely)."""
    for t in np.linspace(0.0, 1.0, 400):
        x, y = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])
        if abs(x - box.x) < box.w / 2 - 1e-6 and abs(y - box.y) < box.h / 2 - 1e-6:
            return True
    return False


def test_no_box_overlaps_another_and_no_edge_crosses_a_box():
    space = SearchSpace()
    for seed in range(60):
        layout = layout_cell(space.sample(seed))
        boxes = list(layout.boxes.items())
        for i, (name, box) in enumerate(boxes):
            assert box.x - box.w / 2 > 0 and box.x + box.w / 2 < layout.width, (seed, name)
            for other_name, other in boxes[i + 1 :]:
                assert not box.overlaps(other), (seed, name, other_name)
        for edge in layout.edges:
            ys = [y for _, y in edge.points]  # between the legend and the title
            assert min(ys) >= MARGIN + LEGEND_H and max(ys) <= layout.height - MARGIN - TITLE_H
            for start, end in zip(edge.points, edge.points[1:]):
                for name, box in boxes:
                    if name not in (edge.source, edge.target):
                        assert not crosses(start, end, box), (seed, edge, name)


def test_draw_writes_an_svg_with_its_labels_and_a_png(tmp_path):
    genotype = Genotype.load(CELL)
    paths = draw_cell(genotype, tmp_path / "cell", "quality 0.4744")
    assert paths == [tmp_path / "cell.svg", tmp_path / "cell.png"]
    svg = paths[0].read_text()
    for label in ("node 3", "gated_conv", "tdiff", "output: residual", "quality 0.4744"):
        assert label in svg
    with Image.open(paths[1]) as png:
        assert png.width > 1000 and png.height > 300


def test_export_draws_any_cell_file(tmp_path, capsys):
    assert export_main(["--draw", str(CELL), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "cell.svg").is_file() and (tmp_path / "cell.png").is_file()
    assert str(tmp_path / "cell.png") in capsys.readouterr().out


@pytest.mark.parametrize(
    "what, message",
    [
        ("missing", "does not exist"),
        ("not json", "not valid JSON"),
        ("unknown op", "unknown op 'conv9x9'"),
    ],
)
def test_a_bad_cell_file_is_one_clear_error(tmp_path, capsys, what, message):
    path = tmp_path / "cell.json"
    if what == "not json":
        path.write_text("{nodes: ")
    elif what == "unknown op":
        data = json.loads(CELL.read_text())
        data["nodes"][0]["ops"][0] = "conv9x9"
        path.write_text(json.dumps(data))
    assert export_main(["--draw", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err and str(path) in err
    assert not (tmp_path / "out").exists()


def test_draw_and_a_run_folder_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exc:
        export_main(["runs/demo", "--draw", str(CELL)])
    assert exc.value.code == 2
    assert "--draw draws one cell file" in capsys.readouterr().err

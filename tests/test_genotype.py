import json

import numpy as np
import pytest

from search_spaces.genotype import SPACE_VERSION, Genotype, GenotypeError, Node, copy_genotype
from search_spaces.ops import OP_NAMES
from search_spaces.space import SearchSpace


def test_round_trips_are_exact_for_sampled_genotypes():
    space = SearchSpace(n_nodes=4)
    rng = np.random.default_rng(0)
    for _ in range(300):
        tokens = space.sample_tokens(rng)
        genotype = space.decode(tokens)
        assert space.encode(genotype) == tokens
        assert Genotype.from_json(genotype.to_json()) == genotype
        assert space.encode(Genotype.from_dict(json.loads(genotype.to_json()))) == tokens


def test_space_counts_and_seeded_sampling():
    space = SearchSpace(n_nodes=2, ops=("none", "skip", "conv1x1"))
    # alpha, beta, fusion 3 each; node0 inputs 3 choices, node1 4; ops 3; output 3
    assert space.num_genotypes == 27 * (3 * 3) ** 2 * (4 * 3) ** 2 * 3
    assert [d.name for d in space.decisions][:4] == ["alpha", "beta", "fusion", "node0.input0"]
    assert space.sample(7) == space.sample(7)
    assert len({space.sample(s) for s in range(20)}) > 15
    assert space.kinds["input"] == 4


def test_example_cell_json_in_docs_is_valid():
    genotype = Genotype.load("docs/cell.json")
    assert genotype.alpha in (2, 4, 8)


def test_the_copy_cell_in_docs_is_the_copy_baseline_at_alpha_4():
    """docs/copy-a4.json, the README's trained-copy control, is copy_genotype() itself."""
    assert Genotype.load("docs/copy-a4.json") == copy_genotype(alpha=4)


def test_version_1_genotypes_load_as_version_2_with_the_same_meaning():
    data = copy_genotype().to_dict()
    data["space_version"] = "1"
    genotype = Genotype.from_dict(data)
    assert genotype.space_version == SPACE_VERSION == "2"
    assert genotype == copy_genotype()


def _valid():
    return copy_genotype().to_dict()


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(alpha=3), "alpha"),
        (lambda d: d.update(beta="1/3"), "beta"),
        (lambda d: d.update(fusion="optical_flow"), "fusion"),
        (lambda d: d.update(output="max"), "output"),
        (lambda d: d["nodes"][1].update(ops=["skip", "conv9x9"]), "nodes[1].ops[1]"),
        (lambda d: d["nodes"][0].update(inputs=[3, 0]), "nodes[0].inputs[0]"),  # itself
        (lambda d: d["nodes"][1].update(inputs=[0, 6]), "nodes[1].inputs[1]"),  # later node
        (lambda d: d["nodes"][0].update(inputs=[0, -1]), "nodes[0].inputs[1]"),
        (lambda d: d.pop("nodes"), "nodes"),
        (lambda d: d.update(space_version="0"), "space_version"),
        (lambda d: d["nodes"].__setitem__(0, [0, "skip"]), "nodes[0]"),
    ],
)
def test_bad_genotypes_name_the_field_and_allowed_values(mutate, field):
    data = _valid()
    mutate(data)
    with pytest.raises(GenotypeError) as err:
        Genotype.from_dict(data)
    assert str(err.value).startswith(field)


def test_unknown_op_error_lists_allowed_ops():
    data = _valid()
    data["nodes"][0]["ops"] = ["conv9x9", "none"]
    with pytest.raises(GenotypeError, match="allowed") as err:
        Genotype.from_dict(data)
    assert all(op in str(err.value) for op in OP_NAMES)


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "cell.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        Genotype.load(bad)
    with pytest.raises(GenotypeError, match="does not exist"):
        Genotype.load(tmp_path / "missing.json")
    bad.write_text("[1, 2, 3]")
    with pytest.raises(GenotypeError, match="JSON object"):
        Genotype.load(bad)


def test_exported_cell_json_wrapper_is_accepted():
    g = copy_genotype(alpha=2)
    assert Genotype.from_dict({"genotype": g.to_dict(), "reward": 0.5}) == g


def test_copy_genotype_reads_only_the_slow_state():
    g = copy_genotype()
    assert g.used_inputs() == {0}
    assert g.leaf_nodes() == [6]


def test_used_inputs_follow_ops_that_read_the_fast_pathway():
    g = Genotype(2, "1/2", "time_to_channel", (Node((0, 1), ("gated_conv", "none")),), "sum")
    assert g.used_inputs() == {0, 2}
    space = SearchSpace(n_nodes=1)
    with pytest.raises(GenotypeError, match="nodes: this space has 1"):
        space.encode(copy_genotype())


def test_a_node_read_by_none_or_tdiff_alone_is_not_live_nor_are_its_inputs():
    nodes = (
        Node((1, 1), ("conv3x3", "sep3x3")),  # 3: read by tdiff alone
        Node((3, 0), ("tdiff", "skip")),  # 4
        Node((1, 2), ("gap", "warp")),  # 5: read by none alone
        Node((4, 5), ("skip", "none")),  # 6: the one leaf
    )
    g = Genotype(4, "1/4", "time_to_channel", nodes, "sum")
    assert g.leaf_nodes() == [6]
    assert g.live_states() == {6, 4, 0}
    assert g.used_inputs() == {0, 2}  # tdiff reads the fast pathway; nothing reads input 1
    wired = Genotype(4, "1/4", "time_to_channel", nodes[:3] + (Node((4, 5), ("skip", "skip")),))
    assert wired.live_states() == {6, 5, 4, 2, 1, 0} and wired.used_inputs() == {0, 1, 2}


def test_a_space_narrowed_to_residual_outputs_proposes_and_accepts_only_those():
    space = SearchSpace(outputs=("residual",))
    rng = np.random.default_rng(0)
    cells = [space.decode(space.sample_tokens(rng)) for _ in range(20)]
    assert {g.output for g in cells} == {"residual"}
    assert space.decode(space.encode(cells[0])) == cells[0]
    assert space.num_genotypes * 3 == SearchSpace().num_genotypes
    other = SearchSpace().sample(1)
    summed = Genotype(other.alpha, other.beta, other.fusion, other.nodes, "sum")
    with pytest.raises(GenotypeError, match="this space's outputs are \\['residual'\\]"):
        space.encode(summed)
    # given in any order, the choices keep the space's own order (tokens stay comparable)
    assert SearchSpace(outputs=("residual", "sum")).outputs == ("sum", "residual")
    for bad in ((), ("residul",)):
        with pytest.raises(ValueError, match="choose among"):
            SearchSpace(outputs=bad)

"""bench/payoff's verdicts: the best searched cell against copy (two standard errors), the
random cells' mean and the static network; the search never reads the scored sequences."""

import dataclasses
import json

import numpy as np
import pytest

from bench import payoff, protocols
from nas.checkpoint import json_text
from tests.fixtures_data import make_davis

NAMED_DAVIS = (*protocols.DAVIS_UNSEEN, *protocols.SEARCH_HELD_IN, "bear")
"""A tiny DAVIS-2016 layout holding the sequences the payoff's splits name."""


def combined(static: float, copy: float, seeds: list[float], ratio: float) -> dict:
    def row(quality: float, gflops: float) -> dict:
        return {"quality_nonkey": quality, "gflops_ratio": gflops}

    return {
        "networks": {
            "static": row(static, 1.0),
            "copy": row(copy, 0.5),
            "video": row(sum(seeds) / len(seeds), ratio),
        },
        "seeds": [{"video_nonkey": v} for v in seeds],
        "video_nonkey_std": float(np.std(seeds, ddof=1)),
    }


def rows(best_seeds: list[float], random_quality: float) -> list[dict]:
    best = payoff.summarise("search-1", combined(0.80, 0.76, best_seeds, 0.45))
    rand = payoff.summarise("random-1", combined(0.80, 0.76, [random_quality] * 3, 0.6))
    return [{**best, "alpha": 2, "beta": "1/4"}, {**rand, "alpha": 4, "beta": "1/2"}]


def test_a_clear_margin_over_copy_meets_every_target():
    table = rows([0.79, 0.785, 0.795], 0.77)
    check = payoff.targets(table)
    assert check["minus_copy"] == pytest.approx(0.03)
    assert check["standard_error"] == pytest.approx(0.005 / 3**0.5)
    assert check["above_copy"] and check["above_random"]
    assert check["random_minus_copy_mean"] == pytest.approx(0.01)  # 0.77 vs copy 0.76
    assert check["above_random_minus_copy"]
    assert check["quality_met"] and check["gflops_met"]
    text = payoff.table(table)
    assert "search-1" in text and "copy" in text and "+0.0300" in text
    assert json.loads(json_text(check))["above_copy"] is True  # --json: plain bools


def test_a_margin_inside_the_noise_is_not_above_copy():
    check = payoff.targets(rows([0.80, 0.74, 0.77], 0.78))
    assert check["minus_copy"] == pytest.approx(0.01)
    assert not check["above_copy"]  # SE 0.017: 0.01 is under two of them
    assert not check["above_random"]
    assert not check["above_random_minus_copy"]  # +0.01 over copy vs the random cell's +0.02


def test_gains_over_copy_compare_cells_at_different_alphas():
    # a cheap alpha-8 cell well above its copy; a random alpha-2 cell better in quality, below
    # its own copy: below the random mean, above it in gain over copy
    best = payoff.summarise("search-1", combined(0.80, 0.60, [0.65, 0.66, 0.64], 0.3))
    rand = payoff.summarise("random-1", combined(0.80, 0.74, [0.72] * 3, 0.7))
    check = payoff.targets(
        [{**best, "alpha": 8, "beta": "1/8"}, {**rand, "alpha": 2, "beta": "1/8"}]
    )
    assert not check["above_random"] and check["above_random_minus_copy"]
    assert check["random_minus_copy_mean"] == pytest.approx(-0.02)
    line = payoff.verdict(check)
    assert "above the random cells' mean 0.7200: False" in line
    assert "+0.0500 vs the random cells' mean -0.0200: True" in line


def test_vs_static_divides_by_the_static_of_the_rows_own_alpha(tmp_path, capsys):
    """Static is scored on each alpha's own non-key frames: one static row per alpha, and each
    share of it from its own (dividing by the first row's gave 90.4% for 91.6%)."""
    best = payoff.summarise("search-1", combined(0.60, 0.50, [0.55] * 3, 0.4))
    rand = payoff.summarise("random-1", combined(0.80, 0.76, [0.78] * 3, 0.6))
    table = [{**best, "alpha": 4, "beta": "1/4"}, {**rand, "alpha": 2, "beta": "1/8"}]
    lines = payoff.table(table).splitlines()
    assert [line.split()[:3] for line in lines if line.startswith("static")] == [
        ["static", "2", "0.8000"],
        ["static", "4", "0.6000"],
    ]
    copy2 = next(line for line in lines if line.startswith("copy") and line.split()[1] == "2")
    assert "95.0%" in copy2  # 0.76 / 0.80
    assert "97.5%" in next(line for line in lines if line.startswith("random-1"))
    assert "91.7%" in next(line for line in lines if line.startswith("search-1"))
    # --table prints a saved table again, and nothing else
    path = tmp_path / "payoff.json"
    path.write_text(json_text({"rows": table, "targets": payoff.targets(table)}))
    assert payoff.main(["--table", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "random-1" in printed and "97.5%" in printed and "best searched cell" in printed
    assert "trained copy" not in printed  # a table saved before the trained copies
    path.write_text("{}")
    assert payoff.main(["--table", str(path)]) == 2
    assert "is no table this bench wrote" in capsys.readouterr().err


def test_the_trained_copy_is_a_control_every_cell_is_compared_with():
    """What a cell adds beyond training a non-key head: its gain over the copy cell trained
    end to end at its alpha, against two standard errors of the difference."""
    table = rows([0.79, 0.785, 0.795], 0.77)  # search-1 at alpha 2, 0.79 +- 0.0029
    control = payoff.summarise("copy-trained", combined(0.80, 0.76, [0.78, 0.779, 0.781], 0.5))
    table.append({**control, "alpha": 2, "beta": "1/4"})
    check = payoff.targets(table)
    assert check["minus_trained_copy"] == pytest.approx(0.01)
    assert check["trained_copy_standard_error"] == pytest.approx(
        np.hypot(0.005 / 3**0.5, 0.001 / 3**0.5)
    )
    assert check["above_trained_copy"]  # 0.01 > 2 x 0.0029
    assert "+0.0100 over the trained copy (combined SE 0.0029; > 2 SE: True)" in payoff.verdict(
        check
    )
    lines = payoff.table(table).splitlines()
    assert "- trained" in lines[0]
    best = next(line for line in lines if line.startswith("search-1"))
    assert best.split()[6:8] == ["+0.0300", "+0.0100"]  # - copy, - trained
    # the random cell's alpha has no trained copy: n/a, not another alpha's
    assert next(line for line in lines if line.startswith("random-1")).split()[7] == "n/a"
    trained = next(line for line in lines if line.startswith("copy-trained"))
    assert trained.split()[6:8] == ["+0.0200", "n/a"]  # its head training's gain over copy
    assert [r["name"] for r in payoff.cells(table)] == ["search-1", "random-1"]
    # inside the noise: not above; and a table without trained copies says nothing of them
    table[0] = {**table[0], "quality": 0.785}
    assert not payoff.targets(table)["above_trained_copy"]
    assert "trained copy" not in payoff.verdict(payoff.targets(rows([0.79, 0.785, 0.795], 0.77)))
    # a seed that scored nothing leaves the cell's SE unknown: never counted as zero
    table[0] = {**table[0], "quality": 0.9, "se": None}
    check = payoff.targets(table)
    assert check["trained_copy_standard_error"] is None and not check["above_trained_copy"]
    assert "over the trained copy (combined SE n/a; > 2 SE: False)" in payoff.verdict(check)


def test_the_trained_copy_is_trained_once_for_each_alpha_the_table_holds(monkeypatch):
    trained = []

    def score(prep, name, cell, real_args, log, unsup=False):
        trained.append((name, cell.alpha))
        return {"name": name, "alpha": cell.alpha, "genotype": cell.to_dict()}

    monkeypatch.setattr(payoff, "score", score)
    table = [{"name": n, "alpha": a} for n, a in (("search-1", 4), ("reference", 4))]
    controls = payoff.trained_copy_rows(table, [], None, None, print, False)
    table += [{"name": n, "alpha": a} for n, a in (("random-1", 8), ("random-2", 2))]
    controls = payoff.trained_copy_rows(table, controls, None, None, print, False)
    assert trained == [("copy-trained", 4), ("copy-trained", 2), ("copy-trained", 8)]
    assert [c["alpha"] for c in controls] == [4, 2, 8]
    copy4 = payoff.Genotype.from_dict(controls[0]["genotype"])
    assert copy4 == payoff.Genotype.load(payoff.REPO / "docs" / "copy-a4.json")  # bench.real's


def test_the_bench_trains_the_trained_copy_beside_the_cells_and_reports_it(
    tmp_path, monkeypatch, capsys
):
    """main's order: reference, search, search-1, the trained copies of their alphas (the
    targets need search-1's), random cells, the other searched cells, then the trained copies
    of the alphas left; the table, the verdict and the JSON carry them."""
    make_davis(tmp_path / "davis2016", frames=2, names=NAMED_DAVIS)
    cell = payoff.random_cells(1, seed=5)[0]
    searched = [dataclasses.replace(cell, alpha=8), dataclasses.replace(cell, alpha=2)]
    random_alpha = payoff.random_cells(1, seed=0)[0].alpha
    scored = []

    def score_seeds(cell, prep, args, log, unsupervised=False):
        is_copy = cell == payoff.copy_genotype(cell.alpha)
        scored.append(("copy" if is_copy else "cell", cell.alpha))
        return combined(0.8, 0.7, [0.72, 0.721, 0.719] if is_copy else [0.75, 0.76, 0.74], 0.4)

    monkeypatch.setattr(payoff.real, "prepare", lambda *a, **k: None)
    monkeypatch.setattr(payoff.real, "score_seeds", score_seeds)
    monkeypatch.setattr(payoff, "run_search", lambda *a: [{"status": "done"}] * 2)
    best = [{"genotype": g.to_dict()} for g in searched]
    monkeypatch.setattr(payoff, "top_records", lambda out, k: best)
    compared = []

    def measure(rows, *args):
        compared.extend(r["name"] for r in rows)
        return {}

    monkeypatch.setattr(payoff.search_outcome, "measure", measure)
    monkeypatch.setattr(payoff.search_outcome, "report", lambda outcome, held_in: "")
    out = tmp_path / "table.json"
    argv = ["--data-root", str(tmp_path), "--out", str(tmp_path / "p"), "--json", str(out)]
    assert payoff.main([*argv, "--top", "2", "--random", "1"]) == 0
    assert compared == ["search-1", "search-2", "reference", "random-1"]  # the cells only
    first = [("cell", 4), ("cell", 8), ("copy", 4), ("copy", 8), ("cell", random_alpha)]
    assert scored[:5] == first and scored[5] == ("cell", 2)
    assert scored[6:] == [("copy", a) for a in sorted({2, random_alpha} - {4, 8})]
    saved = json.loads(out.read_text())
    controls = [r["alpha"] for r in saved["rows"] if r["name"] == "copy-trained"]
    assert controls == [a for kind, a in scored if kind == "copy"]  # once an alpha
    assert saved["targets"]["minus_trained_copy"] == pytest.approx(0.03)
    printed = capsys.readouterr().out
    assert "+0.0300 over the trained copy" in printed and "copy-trained" in printed


def test_random_cells_are_reproducible_and_valid():
    first, again = payoff.random_cells(3, seed=0), payoff.random_cells(3, seed=0)
    assert first == again and len(set(g.to_json() for g in first)) == 3
    for genotype in first:
        genotype.validate()


def test_the_search_reads_training_sequences_only(tmp_path):
    args = payoff.parser().parse_args(["--data-root", str(tmp_path), "--children", "5"])
    config = payoff.search_config(args)
    for name in protocols.DAVIS_UNSEEN:
        assert config.train_split.startswith("train:-") and name in config.train_split
        assert name not in config.val_split
    assert config.val_split == f"train:{protocols.named(protocols.SEARCH_HELD_IN)}"
    assert config.max_children == 5 and config.backbone == "efficientnet_lite0_s16"
    assert config.pretrained_backbone == "imagenet"
    assert config.target_ratio == 0.5  # the table's own GFLOPs target


def test_the_held_in_sequences_can_be_chosen_never_among_the_unseen(tmp_path, capsys):
    argv = ["--data-root", str(tmp_path), "--held-in", "hockey, surf,tennis,hockey"]
    args = payoff.parser().parse_args(argv)
    assert args.held_in == ("hockey", "surf", "tennis")
    config = payoff.search_config(args)
    assert config.val_split == "train:hockey,surf,tennis"
    assert (
        config.train_split == f"train:-{protocols.named(protocols.DAVIS_UNSEEN)},hockey,surf,tennis"
    )
    for bad, says in (("surf,rhino", "names rhino, scored only"), (" , ", "names no sequence")):
        with pytest.raises(SystemExit):
            payoff.parser().parse_args(["--data-root", str(tmp_path), "--held-in", bad])
        assert says in capsys.readouterr().err


def test_a_misspelt_held_in_sequence_is_refused_before_anything_trains(tmp_path):
    make_davis(tmp_path / "davis2016", frames=2, names=NAMED_DAVIS)
    argv = ["--data-root", str(tmp_path), "--held-in", "hockey,surff"]
    with pytest.raises(ValueError, match="has no sequence surff; its sequences: .*surf"):
        payoff.checked_search_config(payoff.parser().parse_args(argv), tmp_path / "search")
    argv[-1] = "hockey,surf"
    config = payoff.checked_search_config(payoff.parser().parse_args(argv), tmp_path / "search")
    assert config.val_split == "train:hockey,surf"


def test_the_reward_target_and_the_outputs_can_be_chosen(tmp_path):
    argv = ["--data-root", str(tmp_path), "--target-ratio", "0.5", "--outputs", "residual"]
    config = payoff.search_config(payoff.parser().parse_args(argv))
    assert config.target_ratio == 0.5 and config.output_modes() == ("residual",)


def test_a_folder_holding_another_search_is_refused_before_anything_trains(tmp_path, monkeypatch):

    make_davis(tmp_path / "davis2016", frames=2, names=NAMED_DAVIS)
    args = payoff.parser().parse_args(["--data-root", str(tmp_path), "--target-ratio", "0.4"])
    out = tmp_path / "search"
    out.mkdir()
    saved = payoff.search_config(payoff.parser().parse_args(["--data-root", str(tmp_path)]))
    (out / "search.json").write_text(json_text(saved.to_dict()))
    with pytest.raises(ValueError, match="target_ratio \\(search: 0.5, given: 0.4\\)"):
        payoff.checked_search_config(args, out)
    assert (
        payoff.checked_search_config(
            payoff.parser().parse_args(["--data-root", str(tmp_path)]), out
        )
        == saved
    )
    with pytest.raises(payoff.SearchError, match="choose among"):
        bad = payoff.parser().parse_args(["--data-root", str(tmp_path), "--outputs", "residul"])
        payoff.checked_search_config(bad, tmp_path / "new")
    # main checks it before the teacher: a prepare that would train fails the test
    monkeypatch.setattr(payoff.real, "prepare", lambda *a, **k: pytest.fail("trained first"))
    argv = ["--data-root", str(tmp_path), "--out", str(tmp_path), "--target-ratio", "0.4"]
    assert payoff.main(argv) == 2


def test_random_cells_come_from_the_searchs_space():
    from search_spaces.space import SearchSpace

    cells = payoff.random_cells(5, seed=0, space=SearchSpace(outputs=("residual",)))
    assert {g.output for g in cells} == {"residual"}
    assert payoff.random_cells(3, seed=0, space=SearchSpace()) == payoff.random_cells(3, seed=0)


def test_the_fast_encoders_distillation_reaches_the_teacher(tmp_path, monkeypatch):
    """--fast-steps is the davis-unseen teacher's (bench.real's args), defaulting to its own."""
    make_davis(tmp_path / "davis2016", frames=2, names=NAMED_DAVIS)
    seen = []

    def prepare(protocol, root, size, args, out, log):
        seen.append(args.fast_steps)
        raise ValueError("stop before training")

    monkeypatch.setattr(payoff.real, "prepare", prepare)
    for extra in ([], ["--fast-steps", "1000"]):
        argv = ["--data-root", str(tmp_path), "--out", str(tmp_path / "p"), *extra]
        assert payoff.main(argv) == 2
    assert seen == [payoff.real.parser().get_default("fast_steps"), 1000]

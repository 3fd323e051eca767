"""bench/search_outcome: the payoff table's cells scored as search children beside their
table rows; copy read from the search's records at each alpha; rank correlations that can
disagree."""

from __future__ import annotations

import json

import pytest

from bench import payoff, search_outcome
from nas.checkpoint import json_text


def record(alpha: int, copy: float, status: str = "ok") -> dict:
    return {"genotype": {"alpha": alpha}, "copy_quality": copy, "status": status}


def row(name: str, alpha: int, quality: float | None, copy: float) -> dict:
    return {"name": name, "alpha": alpha, "quality": quality, "copy": copy, "genotype": {}}


def test_copy_on_the_held_in_sequences_is_read_per_alpha_from_finished_children():
    records = [record(8, 0.0, "failed"), record(8, 0.50), record(4, 0.55), record(8, 0.50)]
    assert search_outcome.held_in_copy(records) == {8: 0.50, 4: 0.55}


def test_a_search_that_ranks_gains_backwards_shows_a_negative_correlation():
    rows = [row("search-1", 8, 0.43, 0.42), row("random-1", 8, 0.46, 0.42)]
    rows += [row("reference", 4, 0.51, 0.49), row("random-2", 2, 0.55, 0.56)]
    held_in = [0.55, 0.50, 0.58, 0.69]  # gains over copy in the reverse order of the unseen
    copies = {8: 0.50, 4: 0.55, 2: 0.59}
    result = search_outcome.compare(rows, held_in, copies)
    gains = [c["held_in_minus_copy"] for c in result["cells"]]
    assert gains == pytest.approx([0.05, 0.00, 0.03, 0.10])
    assert result["spearman_minus_copy"] == pytest.approx(-1.0)
    assert result["spearman_quality"] is not None
    text = search_outcome.report({**result, "steps": 80}, "hockey, surf")
    assert "search-1" in text and "+0.0500" in text and "80-step child" in text
    assert "gain over copy -1.000 over 4 cells" in text
    json.loads(json_text(result))


def test_too_few_cells_or_an_unknown_copy_give_no_correlation():
    rows = [row("search-1", 8, 0.43, 0.42), row("random-1", 2, None, 0.56)]
    result = search_outcome.compare(rows, [0.6, 0.5], {8: 0.5})
    assert result["cells"][1]["held_in_minus_copy"] is None
    assert result["cells"][1]["unseen_minus_copy"] is None
    assert result["spearman_quality"] is None and result["spearman_minus_copy"] is None
    assert "n/a over 1 cells" in search_outcome.report({**result, "steps": 80}, "hockey, surf")


def test_a_side_that_does_not_vary_gives_no_correlation():
    rows = [row(f"random-{i}", 8, q, 0.42) for i, q in enumerate((0.43, 0.44, 0.45))]
    result = search_outcome.compare(rows, [0.6, 0.6, 0.6], {8: 0.5})
    assert result["spearman_quality"] is None and result["spearman_quality_cells"] == 3


def test_each_row_is_one_child_with_the_runs_own_steps_and_one_seed(tmp_path):
    from nas.config import SearchConfig

    (tmp_path / "search.json").write_text(json_text(SearchConfig(child_steps=7).to_dict()))
    rows = [
        {**row("search-1", 2, 0.5, 0.4), "genotype": {"alpha": 2}},
        {**row("random-1", 4, 0.5, 0.4), "genotype": {"alpha": 4}},
    ]
    assert search_outcome.held_in_jobs(rows, tmp_path, seed=3) == [
        (str(tmp_path), {"alpha": 2}, 7, 3),
        (str(tmp_path), {"alpha": 4}, 7, 3),
    ]


def test_the_payoff_bench_runs_the_comparison_unless_told_not_to(tmp_path):
    assert payoff.parser().parse_args(["--data-root", str(tmp_path)]).outcome
    assert not payoff.parser().parse_args(["--no-outcome"]).outcome


def test_the_child_metric_bench_skips_without_a_payoff_table(tmp_path, capsys):
    from bench import child_metric

    assert child_metric.main(["--payoff", str(tmp_path / "none.json"), "--run", str(tmp_path)]) == 0
    assert "skipped: needs" in capsys.readouterr().out

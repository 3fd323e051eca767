"""bench/teachers: cells and trained copies on several teachers, each in its own folder, and
a cell's gains over copy and over the trained copy with their spread between teachers."""

import json
import types
from pathlib import Path

import pytest

from bench import teachers
from tests.fixtures_data import make_davis
from tests.test_payoff import NAMED_DAVIS, combined

REFERENCE_GAIN = {0: 0.010, 1: 0.013, 2: 0.016}
"""The reference's gain over the trained copy on each teacher: steady."""
NOISY_GAIN = {0: 0.020, 1: -0.015, 2: 0.010}
"""Another cell's: its sign changes with the teacher."""


@pytest.fixture
def benched(tmp_path, monkeypatch, capsys):
    """bench.teachers run on a tiny DAVIS layout, each teacher and training faked: what it
    trained, where, and what it printed."""
    make_davis(tmp_path / "davis2016", frames=2, names=NAMED_DAVIS)
    noisy = teachers.Genotype.load(teachers.payoff.REFERENCE)
    noisy = teachers.Genotype.from_dict({**noisy.to_dict(), "alpha": 8})
    (tmp_path / "noisy.json").write_text(noisy.to_json())
    trained = []

    def prepare(protocol, root, size, args, out, log):
        return types.SimpleNamespace(seed=args.seed, out=out)

    def score_seeds(cell, prep, args, log, unsupervised=False):
        copy = cell == teachers.copy_genotype(cell.alpha)
        trained.append((prep.seed, prep.out.name, "copy" if copy else "cell", cell.alpha))
        control = 0.51 + 0.001 * prep.seed
        gain = (REFERENCE_GAIN if cell.alpha == 4 else NOISY_GAIN)[prep.seed]
        quality = control if copy else control + gain
        return combined(0.6, 0.5, [quality - 0.001, quality, quality + 0.001], 0.4)

    monkeypatch.setattr(teachers.real, "prepare", prepare)
    monkeypatch.setattr(teachers.real, "score_seeds", score_seeds)
    out = tmp_path / "table.json"
    argv = ["--data-root", str(tmp_path), "--out", str(tmp_path / "t"), "--json", str(out)]
    cells = [str(teachers.payoff.REFERENCE), str(tmp_path / "noisy.json")]
    assert teachers.main([*argv, "--cells", *cells]) == 0
    return trained, json.loads(out.read_text()), capsys.readouterr().out


def test_every_cell_and_trained_copy_trains_on_every_teacher_in_its_own_folder(benched):
    trained, _, _ = benched
    for seed in (0, 1, 2):
        on_it = [t[2:] for t in trained if t[:2] == (seed, f"seed{seed}")]
        assert on_it == [("cell", 4), ("cell", 8), ("copy", 4), ("copy", 8)]
    assert len(trained) == 12


def test_a_gain_steady_across_teachers_is_above_the_trained_copy_a_changing_one_is_not(benched):
    _, saved, printed = benched
    reference, noisy = saved["gains"]["reference"], saved["gains"]["noisy"]
    assert reference["minus_trained_copy"] == pytest.approx([0.010, 0.013, 0.016])
    assert reference["over_trained_copy"]["mean"] == pytest.approx(0.013)
    assert reference["over_trained_copy"]["std"] == pytest.approx(0.003)
    assert reference["over_trained_copy"]["se"] == pytest.approx(0.003 / 3**0.5)
    assert reference["minus_copy"] == pytest.approx([0.020, 0.024, 0.028])  # copy 0.5
    assert reference["above_trained_copy"] and not noisy["above_trained_copy"]
    assert noisy["alpha"] == 8 and noisy["over_trained_copy"]["mean"] == pytest.approx(0.005)
    assert "reference: +0.0130 over the trained copy at alpha 4 over 3 teachers" in printed
    assert (
        "noisy: +0.0050 over the trained copy at alpha 8 over 3 teachers (SE 0.0104; > 2 SE: False)"
        in printed
    )
    assert (
        "reference        4 trained copy  +0.0100  +0.0130  +0.0160  +0.0130  0.0030  0.0017"
        in printed
    )


def test_one_teacher_has_no_spread_between_teachers():
    assert teachers.spread([0.01]) == {"mean": 0.01, "std": None, "se": None}
    assert teachers.spread([0.01, None])["mean"] is None  # a teacher without a figure


def test_two_cell_files_of_one_name_are_refused(tmp_path, capsys):
    make_davis(tmp_path / "davis2016", frames=2, names=NAMED_DAVIS)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "cell.json").write_text(
            teachers.Genotype.load(teachers.payoff.REFERENCE).to_json()
        )
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "a" / "b" / "c.json").write_text((tmp_path / "a" / "cell.json").read_text())
    cells = [str(tmp_path / "a" / "cell.json"), str(tmp_path / "a" / "b" / "c.json")]
    assert list(teachers.cell_names([teachers.payoff.REFERENCE, *map(Path, cells)])) == [
        "reference",
        "a",  # an exported cell: its folder's name
        "c",
    ]
    cells[1] = str(tmp_path / "b" / "cell.json")
    cells.append(str(tmp_path / "b" / "cell.json"))
    assert teachers.main(["--data-root", str(tmp_path), "--cells", *cells]) == 2
    assert "names two files alike (a, b, b): rename one" in capsys.readouterr().err
    assert teachers.main(["--data-root", str(tmp_path / "none")]) == 0
    assert "skipped: no DAVIS-2016" in capsys.readouterr().out

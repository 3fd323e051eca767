import math

import pytest

from nas.budget import BudgetError, parse_budget
from nas.reward import reward


@pytest.mark.parametrize(
    "text, device, seconds",
    [
        ("2gpu-days", "gpu", 172800),
        ("6gpu-hours", "gpu", 21600),
        ("90gpu-minutes", "gpu", 5400),
        ("90cpu-minutes", "cpu", 5400),
        ("300cpu-seconds", "cpu", 300),
        ("1.5gpu-h", "gpu", 5400),
    ],
)
def test_budget_strings(text, device, seconds):
    budget = parse_budget(text)
    assert (budget.device, budget.seconds) == (device, seconds)


@pytest.mark.parametrize("text", ["2 days", "gpu-days", "2tpu-days", "3gpu-weeks", "0cpu-minutes"])
def test_bad_budget_names_the_format(text):
    with pytest.raises(BudgetError, match="gpu"):
        parse_budget(text)


def test_wall_time_is_budget_over_workers():
    assert "about 5 min" in parse_budget("10cpu-minutes").describe(workers=2)


def test_reward_makes_cost_matter():
    assert reward(0.8, 1.0, 2.0) == 0.8  # under target: quality alone
    at_twice = reward(0.8, 4.0, 2.0)
    assert at_twice <= 0.8 * 0.75  # loses at least 25% at twice the target
    assert math.isnan(reward(float("nan"), 1.0, 2.0))

"""FLOPs, parameters and latency."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.cost import (
    CostReport,
    count_flops,
    count_flops_of_parts,
    count_params,
    measure_latency,
)


def test_conv_flops_equal_hand_formula():
    conv = nn.Conv2d(8, 16, kernel_size=3, padding=1, bias=False)
    report = count_flops(conv, torch.randn(1, 8, 20, 24))
    assert isinstance(report, CostReport)
    assert report.gflops * 1e9 == pytest.approx(2 * 8 * 16 * 3 * 3 * 20 * 24)
    assert report.dense_gflops == report.gflops


def test_grid_sample_is_counted():
    feats = torch.randn(2, 4, 10, 12)
    grid = torch.rand(2, 6, 7, 2) * 2 - 1

    report = count_flops(lambda x, g: F.grid_sample(x, g, align_corners=False), feats, grid)
    assert report.gflops > 0
    assert report.by_op["grid_sampler_2d"] * 1e9 == pytest.approx(2 * 4 * 2 * 4 * 6 * 7)
    nearest = count_flops(
        lambda x, g: F.grid_sample(x, g, mode="nearest", align_corners=False), feats, grid
    )
    assert nearest.gflops == 0


class GatedConv(nn.Module):
    """Toy gated op: a dense 1x1 gate, a 3x3 branch reported as computed on `density`."""

    def __init__(self, channels: int, density: float) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, 1, 1, bias=False)
        self.sparse_branch = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.density = density
        self.last_density = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.gate(x) > 0
        self.last_density = self.density  # set during forward, as the real op measures it
        return torch.where(mask, self.sparse_branch(x), x)


class Net(nn.Module):
    def __init__(self, density: float) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 1, bias=False)
        self.cell = GatedConv(4, density)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cell(self.stem(x))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)


def test_density_scales_only_the_sparse_branch():
    h, w = 16, 16
    stem, gate, branch = 2 * 3 * 4 * h * w, 2 * 4 * 1 * h * w, 2 * 4 * 4 * 9 * h * w
    x = torch.randn(1, 3, h, w)

    report = count_flops(Net(density=0.5), x)
    assert report.dense_gflops * 1e9 == pytest.approx(stem + gate + branch)
    assert report.gflops * 1e9 == pytest.approx(stem + gate + branch / 2)
    assert report.by_module["stem"] * 1e9 == pytest.approx(stem)
    assert report.by_module["cell"] * 1e9 == pytest.approx(gate + branch / 2)
    assert report.densities == {"cell": 0.5}

    net = Net(density=0.25)
    assert count_flops(net.step, x).gflops * 1e9 == pytest.approx(stem + gate + branch / 4)


def test_parts_at_any_depth_are_counted_scaled_and_dense():
    h, w = 16, 16
    gate, branch = 2 * 4 * 1 * h * w, 2 * 4 * 4 * 9 * h * w
    net = Net(density=0.5)
    parts = {"gate": net.cell.gate, "gated": net.cell, "branch": net.cell.sparse_branch}
    report = count_flops_of_parts(net.step, parts, torch.randn(1, 3, h, w))
    assert set(report.by_module) == set(parts)  # not the top-level children
    assert report.by_module["gate"] * 1e9 == pytest.approx(gate)
    assert report.by_module["gated"] * 1e9 == pytest.approx(gate + branch / 2)
    assert report.dense_by_module["gated"] * 1e9 == pytest.approx(gate + branch)
    assert report.dense_by_module["branch"] * 1e9 == pytest.approx(branch)


class TwoFrames(nn.Module):
    """Runs the gated net on two frames that report densities 1.0 then 0.0."""

    def __init__(self) -> None:
        super().__init__()
        self.net = Net(density=0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for density in (1.0, 0.0):
            self.net.cell.density = density
            x = self.net(x).mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        return x


def test_density_is_read_per_call():
    h, w = 8, 8
    report = count_flops(TwoFrames(), torch.randn(1, 3, h, w))
    one_branch = 2 * 4 * 4 * 9 * h * w
    assert (report.dense_gflops - report.gflops) * 1e9 == pytest.approx(one_branch)
    assert report.densities == {"net.cell": 0.0}


def test_count_params_excludes_buffers():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert count_params(model) == 4 * 3 * 9 + 4 + 4 + 4
    model[1].weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 4 * 3 * 9 + 4 + 4


def test_measure_latency_returns_positive_milliseconds():
    conv = nn.Conv2d(3, 8, 3)
    latency = measure_latency(conv, torch.randn(1, 3, 32, 32), warmup=1, repeats=3)
    assert isinstance(latency, float) and latency > 0
    with pytest.raises(ValueError):
        measure_latency(conv, torch.randn(1, 3, 8, 8), repeats=0)

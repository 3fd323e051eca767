import pytest
import torch
import torch.nn.functional as F

from search_spaces.ops import OP_NAMES, OPS_READING_FAST, CellContext, build_op

C = 8


def _ctx(n=2, h=12, w=16, same=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    fast_key = torch.randn(n, C, h, w, generator=g)
    fast = fast_key.clone() if same else torch.randn(n, C, h, w, generator=g)
    return CellContext(
        torch.randn(n, C, h, w, generator=g), torch.randn(n, C, h, w, generator=g), fast, fast_key
    )


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_op_keeps_shape_and_passes_gradients(name):
    op = build_op(name, C).train()
    ctx = _ctx()
    x = ctx.slow.clone().requires_grad_(True)
    ctx = CellContext(x, *[t.clone().requires_grad_(True) for t in ctx[1:]])
    if name == "warp":  # starts as the identity (zero last conv): move it off zero
        torch.nn.init.normal_(op.offset[-1].weight, std=0.1)
    y = op(x, ctx)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    if name == "none":
        assert not y.requires_grad and float(y.abs().sum()) == 0
        return
    y.square().mean().backward()
    grads = [t.grad for t in ctx if t.grad is not None] + [
        p.grad for p in op.parameters() if p.grad is not None
    ]
    assert any(float(g.abs().sum()) > 0 for g in grads), name
    if name in OPS_READING_FAST:
        assert ctx.fast.grad is not None and float(ctx.fast.grad.abs().sum()) > 0


def test_unknown_op_lists_known_ops():
    with pytest.raises(KeyError, match="sep3x3"):
        build_op("conv9x9", C)


def test_gated_conv_computes_nothing_on_an_unchanged_frame():
    op = build_op("gated_conv", C).eval()
    ctx = _ctx(same=True)
    y = op(ctx.slow, ctx)
    assert op.last_density == 0.0
    assert torch.equal(y, ctx.slow)  # exactly the slow-state path


def test_gated_conv_density_is_measured_where_the_frame_changed():
    op = build_op("gated_conv", C).eval()
    with torch.no_grad():
        op.gate.weight.fill_(1.0)
    ctx = _ctx(same=True)
    fast = ctx.fast.clone()
    fast[:, :, :6] += 3.0  # top half of the frame changed
    ctx = ctx._replace(fast=fast)
    y = op(ctx.slow, ctx)
    assert op.last_density == pytest.approx(0.5)
    assert torch.equal(y[:, :, 6:], ctx.slow[:, :, 6:])
    assert not torch.equal(y[:, :, :6], ctx.slow[:, :, :6])


def test_temporal_difference_is_zero_on_identical_frames():
    op = build_op("tdiff", C)
    ctx = _ctx(same=True)
    with torch.no_grad():
        assert float(op(ctx.slow, ctx).abs().max()) == 0.0
        assert float(op(ctx.slow, _ctx()).abs().max()) > 0.0


def _smooth_field(n, c, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(n, c, h // 4, w // 4, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)


def test_learned_warp_fits_a_known_translation():
    torch.manual_seed(0)
    op = build_op("warp", C)
    h, w, shift = 24, 32, 1
    slow = _smooth_field(4, C, h, w, seed=1)
    feat = _smooth_field(4, C, h, w, seed=2) + slow
    moved = torch.roll(feat, shifts=shift, dims=3)  # content moves right by one pixel
    target = torch.roll(slow, shifts=shift, dims=3)
    ctx = CellContext(slow, moved, moved, feat)
    inner = (slice(None), slice(None), slice(2, -2), slice(3, -3))
    identity_error = F.mse_loss(slow[inner], target[inner]).item()
    opt = torch.optim.Adam(op.parameters(), lr=3e-3)
    for _ in range(300):
        loss = F.mse_loss(op(slow, ctx)[inner], target[inner])
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * identity_error
    with torch.no_grad():
        flow = op.offset(torch.cat([ctx.fast, ctx.fast_key], 1))
    # grid_sample reads the source at x + flow: a move right by +1 is read at x - 1
    assert float(flow[:, 0, 2:-2, 3:-3].median()) == pytest.approx(-shift, abs=0.25)

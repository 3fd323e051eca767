"""The embedded synthetic dataset: determinism, classes, motion, and colour that tells nothing
about the class. (How fast clips are made is a benchmark's business, not a unit test's.)"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nas.data import load_clips
from nas.data.synthetic import SyntheticConfig, SyntheticVideo, class_names, make_clip

SMALL = SyntheticConfig(height=48, width=64, length=6)


def test_clip_shapes_and_types():
    config = SyntheticConfig(height=40, width=56, length=5, num_classes=8)
    clip = make_clip(7, config)
    assert clip.frames.shape == (5, 40, 56, 3) and clip.frames.dtype == np.uint8
    assert clip.labels.shape == (5, 40, 56) and clip.labels.dtype == np.int64
    assert clip.labelled.all() and clip.num_classes == 8 and clip.dataset == "synthetic"
    assert clip.labels.min() >= 0 and clip.labels.max() < 8
    assert class_names(8)[0] == "background" and len(class_names(8)) == 8


def test_deterministic_by_seed_and_index():
    a, b = make_clip(3, SMALL), make_clip(3, SMALL)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    other_seed = make_clip(3, replace(SMALL, seed=1))
    other_index = make_clip(4, SMALL)
    for other in (other_seed, other_index):
        assert not np.array_equal(a.frames, other.frames)
        assert not np.array_equal(a.labels, other.labels)


def test_labels_cover_every_class_over_a_few_clips():
    seen = set()
    for i in range(8):
        seen |= set(np.unique(make_clip(i, SMALL).labels).tolist())
    assert seen == set(range(SMALL.num_classes))


@pytest.mark.parametrize("occlusion", [True, False])
def test_motion_is_nonzero_but_small(occlusion):
    config = replace(SMALL, occlusion=occlusion)
    for i in range(4):
        labels = make_clip(i, config).labels
        changed = (labels[1:] != labels[:-1]).mean(axis=(1, 2))
        assert (changed > 0).all(), "every frame moves"
        assert changed.max() < 0.15, "but only a little"


def test_occlusion_off_keeps_every_shape_whole():
    """Without occlusion a shape keeps its area (it only moves and turns inside its cell)."""
    config = replace(SMALL, occlusion=False, min_shapes=1, max_shapes=1, noise=0.0)
    for i in range(4):
        area = (make_clip(i, config).labels > 0).sum(axis=(1, 2))
        assert area.min() > 0.8 * area.max()


def test_default_clip_is_sixteen_frames_of_96_by_128():
    clip = make_clip(0, SyntheticConfig())
    assert clip.frames.shape == (16, 96, 128, 3) and clip.labels.shape == (16, 96, 128)


def _class_colour_z(clips, num_classes: int) -> float:
    """Largest |difference| between two classes' mean colour, in standard errors.

    One sample per (clip, class): the mean RGB of that class's pixels in the clip (clips are
    independent, pixels are not)."""
    samples = {c: [] for c in range(num_classes)}
    for frames, labels in clips:
        for c in np.unique(labels):
            samples[int(c)].append(frames[labels == c].mean(axis=0))
    stats = {c: (np.mean(s, 0), np.std(s, 0, ddof=1) / np.sqrt(len(s))) for c, s in samples.items()}
    z = [
        np.abs(stats[a][0] - stats[b][0]) / np.hypot(stats[a][1], stats[b][1])
        for a in range(num_classes)
        for b in range(a + 1, num_classes)
    ]
    return float(np.max(z))


def test_colour_does_not_depend_on_class():
    config = SyntheticConfig(height=32, width=48, length=2, noise=0.0)
    clips = [(c.frames, c.labels) for c in map(lambda i: make_clip(i, config), range(300))]
    # 10 class pairs x 3 channels: a true difference of zero stays well under 4 errors
    assert _class_colour_z(clips, config.num_classes) < 4.0
    # the same statistic catches one class tinted by 30 grey levels in one channel
    tinted = []
    for frames, labels in clips:
        shifted = frames.astype(np.float64)
        shifted[..., 0] += 30.0 * (labels == 2)
        tinted.append((shifted, labels))
    assert _class_colour_z(tinted, config.num_classes) > 4.0
    # and the spread of colours is alike too
    spread = [np.concatenate([f[lab == c] for f, lab in clips]).std(axis=0) for c in range(5)]
    assert np.max(spread) < 1.3 * np.min(spread)


def test_sequence_and_registry_splits():
    video = SyntheticVideo(SMALL, num_clips=3)
    assert len(video) == 3
    np.testing.assert_array_equal(video[-1].frames, make_clip(2, SMALL).frames)
    with pytest.raises(IndexError):
        video[3]
    train = load_clips("synthetic", None, "train", clip_len=4, size=(32, 40), max_clips=2)
    val = load_clips("synthetic", None, "val", clip_len=4, size=(32, 40), max_clips=2)
    assert len(train) == 2 and train[0].frames.shape == (4, 32, 40, 3)
    assert not np.array_equal(train[0].frames, val[0].frames)
    assert train[0].sequence != val[0].sequence
    with pytest.raises(TypeError, match="unknown synthetic options"):
        load_clips("synthetic", None, "train", colour="red")
    with pytest.raises(ValueError, match="num_classes"):
        SyntheticConfig(num_classes=20)

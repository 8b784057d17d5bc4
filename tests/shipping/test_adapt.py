"""shipping.adapt: a fine-tune on a few crops of an invented team, with its own camera (another colour
pipeline) and its own labelling convention (some keypoints shifted), learns most of the shift and beats
subtracting each keypoint's mean offset; a fine-tune that only hurts keeps the shipped weights."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from cones.augment import AugmentConfig
from cones.splits import split
from cones.synthetic import make_synthetic
from cones.types import ConeSet
from objectives.heatmaps import decode
from objectives.train import predict_heatmaps, train
from search_space.config import Config
from shipping.adapt import AdaptSettings, fine_tune, frame_folds, keypoint_errors, mean_offset

pytestmark = pytest.mark.slow
SIZE = (24, 32)  # half-size crops: a usable base model in seconds (the networks are fully convolutional)
CFG = Config(family="unet", width=6, depth=2, batch_norm=True, head="softmax", loss="ce", batch_size=16, lr=3e-3,
             sigma=1.0)
# The invented team's labelling convention: mid points pushed outward, the right upper point down.
SHIFT = torch.zeros(7, 2)
SHIFT[1, 0], SHIFT[5, 0], SHIFT[2, 1] = 1.5, -1.5, 1.5
SHIFTED = (1, 2, 5)


@pytest.fixture(scope="module")
def setting():
    torch.manual_seed(0)
    shared = make_synthetic(600, seed=1, size=SIZE)
    base = train(CFG, shared, None, 8, augmentation=AugmentConfig.off(), threads=2).model
    new = make_synthetic(160, seed=9, size=SIZE)
    camera = (new.images.float() * 0.7).to(torch.uint8)[:, [2, 1, 0]]  # darker, red and blue swapped
    new = ConeSet(camera, new.keypoints + SHIFT, new.bad_quality, new.names, new.teams, new.frames)
    labelled, test = split(new, val_fraction=0.5, seed=0)
    return base, shared, labelled, test


def test_folds_hold_every_crop_out_once_with_whole_frames():
    data = make_synthetic(30, seed=3, size=SIZE)
    folds = frame_folds(data, 3, seed=0)
    assert len(folds) == 3 and sorted(n for _, held in folds for n in held.names) == sorted(data.names)
    for train_part, held in folds:
        assert not set(train_part.frames) & set(held.frames) and len(train_part) + len(held) == len(data)
    one_frame = data.subset([i for i, f in enumerate(data.frames) if f == data.frames[0]])
    with pytest.raises(ValueError, match="2 or more frames"):
        frame_folds(one_frame, 3, seed=0)


def _offset(model, data: ConeSet) -> torch.Tensor:
    return (decode(predict_heatmaps(model, data.images)) - data.keypoints).mean(dim=0)  # (7, 2)


def test_fine_tune_learns_most_of_a_teams_shift_and_beats_the_mean_offset(setting):
    base, shared, labelled, test = setting
    settings = AdaptSettings(augmentation=AugmentConfig.off())
    result = fine_tune(base, CFG, labelled, shared=shared, settings=settings)
    assert not result.kept_shipped and result.after.mean_px < result.before.mean_px
    assert sum(n for n, _, _ in result.folds) == len(labelled)  # every labelled crop held out once
    before = _offset(base, test)[list(SHIFTED)].abs().sum()
    after = _offset(result.model, test)[list(SHIFTED)].abs().sum()
    assert after < 0.5 * before  # most of the systematic shift is gone, on crops never seen
    crude = keypoint_errors(base, CFG, test, offset=mean_offset(base, CFG, labelled)).mean()
    adapted = keypoint_errors(result.model, CFG, test).mean()
    assert adapted < crude and adapted < 0.7 * keypoint_errors(base, CFG, test).mean()


def test_not_mirroring_keeps_a_lopsided_convention(setting):
    """The invented convention is lopsided (the right upper point moves down, its mirror image, the left upper
    point, does not): a fine-tune on mirrored crops sees both and learns the same for the two, one on unmirrored
    crops learns the difference."""
    base, shared, labelled, test = setting
    augmentation = dataclasses.replace(AugmentConfig.off(), flip_prob=0.5)
    errors = {}
    for mirror in (False, True):
        settings = AdaptSettings(augmentation=augmentation, mirror=mirror)
        model = fine_tune(base, CFG, labelled, shared=shared, settings=settings).model
        offset = _offset(model, test)
        errors[mirror] = (offset[2, 1] - offset[4, 1]).abs().item()  # the lopsidedness not learnt (1.5 px before)
    assert errors[False] < errors[True]


def test_a_fine_tune_that_only_hurts_keeps_the_shipped_weights(setting):
    base, shared, labelled, _ = setting
    wild = AdaptSettings(steps=40, lr_scale=1e30, augmentation=AugmentConfig.off())  # the weights blow up
    result = fine_tune(base, CFG, labelled, shared=shared, settings=wild)
    assert result.kept_shipped and result.after == result.before
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, base.state_dict()[name])

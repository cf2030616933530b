"""The counter-based dropout-mask stream (dropcli/masks.py): the tensor hash is splitmix64 bit for bit, the
masks have the asked rate and no visible correlation, and a trial's masks do not depend on its group."""

from __future__ import annotations

import math

import pytest
import torch

from dropcli.masks import GOLDEN, MaskStream, keep_value, lane_cutoff, mix64, seed_key, signed

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
def test_the_tensor_hash_is_splitmix64_computed_exactly(device):
    """Wrapping int64 multiplies and masked shifts give the same bits as unsigned 64-bit arithmetic: the
    masks are the same integers on any device."""
    stream = MaskStream([0, 7, -3, 2**40], torch.device(device), position=2**33)
    words = stream.words(64).cpu()
    for row, seed in enumerate([0, 7, -3, 2**40]):
        for i in (0, 1, 31, 63):
            expected = signed(mix64(seed_key(seed) + (2**33 + 1 + i) * GOLDEN))
            assert words[row, i].item() == expected
    assert stream.position == 2**33 + 64


def test_masks_keep_the_asked_share_and_scale_survivors():
    stream = MaskStream([5], torch.device("cpu"))
    for p in (0.1, 0.5, 0.9):
        mask = stream.mask((1000, 1000), p, torch.float32)
        kept = (mask > 0).double().mean().item()
        assert abs(kept - (1 - p)) < 5 * math.sqrt(p * (1 - p) / 1e6)  # five standard errors
        assert mask.unique().tolist() == [0.0, pytest.approx(keep_value(p))]
    assert (stream.mask((10, 10), 0.5, torch.float32, scale=False).unique() == torch.tensor([0.0, 1.0])).all()


def test_neighbouring_seeds_and_positions_draw_unrelated_masks():
    """Agreement between two independent p = 0.5 masks is 1/2: so between seeds 0 and 1, and between a
    stream and itself one word further on (no shifted copy)."""
    n = 2**20
    a, b = MaskStream([0, 1], torch.device("cpu")).masks([(n,)], torch.tensor([lane_cutoff(0.5)] * 2,
                                                                               dtype=torch.int16),
                                                         torch.tensor([2.0, 2.0]))[0]
    agree = lambda x, y: (x == y).double().mean().item()  # noqa: E731
    bound = 5 * math.sqrt(0.25 / n)
    assert abs(agree(a, b) - 0.5) < bound
    assert abs(agree(a[4:], a[:-4]) - 0.5) < bound  # one word (four lanes) apart
    lanes = MaskStream([0], torch.device("cpu")).lanes([n])[0].double()
    assert abs(lanes.mean().item() + 0.5) < 5 * 65536 / math.sqrt(12 * n)  # uniform over int16


def test_a_trials_masks_do_not_depend_on_its_group_or_on_how_draws_are_cut():
    shapes = [(4, 6), (4, 5), (3,)]
    rates = [0.3, 0.6, 0.5]
    cutoffs = torch.tensor([lane_cutoff(p) for p in rates], dtype=torch.int16)
    kept = torch.tensor([keep_value(p) for p in rates])
    group = MaskStream([11, 12, 13], torch.device("cpu"), position=10).masks(shapes, cutoffs, kept)
    alone = MaskStream([12], torch.device("cpu"), position=10)
    for site, shape in enumerate(shapes):  # the lone run draws site after site
        assert torch.equal(alone.mask(shape, 0.6, torch.float32), group[site][1])
    pair = MaskStream([13, 11], torch.device("cpu"), position=10).masks(shapes, cutoffs[[2, 0]], kept[[2, 0]])
    assert all(torch.equal(pair[site][1], group[site][0]) for site in range(len(shapes)))

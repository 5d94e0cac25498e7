"""Feature augmentation: frequency warping keeps shapes and the band's ends, is the identity at zero, and moves
energy the way the factor says; speed perturbation scales lengths."""

from __future__ import annotations

import torch

from speechmeta.data.augment import freq_warp, speed_perturb


def test_freq_warp_zero_is_identity_and_draws_nothing():
    feats = torch.randn(3, 20, 80)
    state = torch.get_rng_state()
    assert torch.equal(freq_warp(feats, 0.0), feats)
    assert torch.equal(torch.get_rng_state(), state)  # resumed runs without warping are unchanged


def test_freq_warp_keeps_ends_and_moves_a_peak_by_its_factor():
    bins = 80
    ramp = torch.arange(bins, dtype=torch.float32).expand(4, 5, bins)
    torch.manual_seed(0)
    warped = freq_warp(ramp, 0.2)
    assert warped.shape == ramp.shape
    assert torch.allclose(warped[..., 0], torch.zeros(4, 5)) and torch.allclose(warped[..., -1], ramp[..., -1])
    assert (warped.diff(dim=-1) > 0).all()  # monotone: no bins swapped
    factors = warped[:, 0, 10] / 10  # below the cut, bin f reads the input at f * factor
    assert ((factors >= 0.8 - 1e-5) & (factors <= 1.2 + 1e-5)).all() and factors.std() > 0  # one factor per utt
    assert torch.allclose(warped[:, 0, 20], 20 * factors, atol=1e-4)
    assert torch.equal(warped[:, 0], warped[:, 4])  # the same factor over all frames of an utterance


def test_freq_warp_by_a_given_factor_warps_every_utterance_alike_and_draws_nothing():
    bins = 80
    ramp = torch.arange(bins, dtype=torch.float32).expand(3, 5, bins)
    state = torch.get_rng_state()
    warped = freq_warp(ramp, 0.0, 1.1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.allclose(warped[:, :, 10], torch.full((3, 5), 11.0), atol=1e-4)  # bin 10 reads bin 11
    assert torch.equal(warped[0], warped[2]) and torch.equal(freq_warp(ramp, 0.3, 1.0), ramp)


def test_speed_perturb_scales_lengths():
    feats, lens = torch.randn(2, 100, 8), torch.tensor([100, 50])
    out, out_lens = speed_perturb(feats, lens, 1.25)
    assert out.shape == (2, 80, 8) and out_lens.tolist() == [80, 40]

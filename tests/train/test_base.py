"""EpochMeanPlan: epoch sums of the logged losses, kept in float32 under mixed precision."""

from __future__ import annotations

import pytest
import torch

from scgensynth.train._base import EpochMeanPlan


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_losses_are_summed_in_float32(dtype):
    """A float16 critic score of 300 over 30 batches of 64 sums to 576,000: far past
    float16's largest value (65,504), where the sum used to become inf."""
    plan = EpochMeanPlan()
    for _ in range(30):
        plan.accumulate("wasserstein", torch.tensor(300.0, dtype=dtype), 64)
    plan.accumulate("wasserstein", torch.tensor(301.0, dtype=dtype), 8)  # a short last batch
    total = plan._sums["wasserstein"]
    assert total.dtype == torch.float32
    assert plan._counts["wasserstein"] == 30 * 64 + 8
    expected = (30 * 64 * 300.0 + 8 * float(torch.tensor(301.0, dtype=dtype))) / (30 * 64 + 8)
    assert float(total) / plan._counts["wasserstein"] == pytest.approx(expected, rel=1e-6)
    # in the loss's own dtype the same sum is not finite (float16) or off (bfloat16)
    low = torch.tensor(0.0, dtype=dtype)
    for _ in range(30):
        low = low + torch.tensor(300.0, dtype=dtype) * 64
    assert not torch.isfinite(low) if dtype == torch.float16 else float(low) != 576_000.0


def test_float32_and_float64_sums_are_unchanged():
    values = [torch.tensor(v) for v in (0.1, 2.5, -3.3)]
    for dtype in (torch.float32, torch.float64):
        plan = EpochMeanPlan()
        expected = None
        for v in values:
            plan.accumulate("loss", v.to(dtype), 32)
            term = v.to(dtype) * 32
            expected = term if expected is None else expected + term
        assert plan._sums["loss"].dtype == dtype
        assert torch.equal(plan._sums["loss"], expected)

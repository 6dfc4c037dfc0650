"""Low-precision features into the default float32 loss (a bfloat16 or float16 backbone)."""

from __future__ import annotations

import pytest
import torch

from dcl_core import DenseContrastiveLoss


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("with_projection", [True, False])
def test_half_features_into_a_float32_loss_match_the_float32_features(dtype, with_projection):
    torch.manual_seed(0)
    loss = DenseContrastiveLoss(8, num_samples=4, with_projection=with_projection)
    masks = torch.zeros(3, 7, 6, dtype=torch.bool)
    masks[:, 1:5, 1:4] = True
    features = torch.randn(3, 8, 7, 6).to(dtype).requires_grad_()
    got = loss(features, masks, generator=torch.Generator().manual_seed(1))
    assert got.dtype == torch.float32 and torch.isfinite(got) and int(loss.last_num_valid) == 3
    want = loss(features.detach().float(), masks, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, want)
    got.backward()
    assert features.grad.dtype == dtype and torch.isfinite(features.grad.float()).all()

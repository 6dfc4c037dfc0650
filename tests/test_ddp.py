"""The dense contrastive loss under DistributedDataParallel: 2 CPU processes, gloo backend
(detectron2 v0.5's ``launch`` asserts CUDA, so this is the multi-process path that runs here).

A tiny conv makes the RoI features, a 1x1 mask predictor and DenseContrastiveLoss (with its
projection) train on them, wrapped in one DDP module with ``find_unused_parameters=False``:
DDP then fails (or hangs, cut by the timeout) unless every parameter is in every rank's graph.
Checked: the gradients after backward are equal across ranks and equal the mean of the
per-rank gradients computed without DDP; one rank with no valid RoI (masks all background, or
no RoI at all) takes the loss's exact-zero path and training still steps."""

from __future__ import annotations

import datetime

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dcl_core import DenseContrastiveLoss

WORLD = 2
C, S = 8, 14  # feature channels, RoI size


class TinyMaskBranch(nn.Module):
    """RoI crops [R, 3, S, S] -> features [R, C, S, S] -> mask logits, plus the DCL term."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, C, 3, padding=1), nn.ReLU())
        self.predictor = nn.Conv2d(C, 1, 1)
        self.contrast_loss = DenseContrastiveLoss(C, num_samples=4, temperature=0.07,
                                                  loss_weight=1.0, with_projection=True)

    def forward(self, crops, masks, generator):
        x = self.features(crops)
        logits = self.predictor(x).squeeze(1)
        mask_loss = nn.functional.binary_cross_entropy_with_logits(logits, masks.float(),
                                                                   reduction="sum") / max(len(masks), 1)
        return mask_loss + self.contrast_loss(x, masks, generator=generator)


def rank_inputs(rank: int, case: str):
    """Each rank's RoIs; with ``case`` "all_bg" or "empty", rank 1 has no valid RoI."""
    g = torch.Generator().manual_seed(100 + rank)
    r = 3
    crops = torch.randn(r, 3, S, S, generator=g)
    masks = torch.zeros(r, S, S, dtype=torch.bool)
    masks[:, 3:10, 4:11] = True  # 49 fg and 147 bg pixels: valid for K = 4
    if rank == 1 and case == "all_bg":
        masks[:] = False
    if rank == 1 and case == "empty":
        crops, masks = crops[:0], masks[:0]
    return crops, masks


def _grads(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def _worker(rank: int, init_file: str, case: str, out: str):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    try:
        torch.manual_seed(0)
        model = TinyMaskBranch()
        ddp = nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
        opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
        results = {}
        for step in range(2):  # a parameter left out of the graph fails DDP at the 2nd step
            crops, masks = rank_inputs(rank, case)
            gen = torch.Generator().manual_seed(step)
            opt.zero_grad()
            loss = ddp(crops, masks, gen)
            loss.backward()
            grads = _grads(model).detach()
            gathered = [torch.zeros_like(grads) for _ in range(WORLD)]
            dist.all_gather(gathered, grads)
            if step == 0:
                # Each rank's own gradient without DDP, from the same weights and draws.
                local = TinyMaskBranch()
                local.load_state_dict(model.state_dict())
                local(crops, masks, torch.Generator().manual_seed(step)).backward()
                own = _grads(local).detach()
                owns = [torch.zeros_like(own) for _ in range(WORLD)]
                dist.all_gather(owns, own)
                results.update(gathered=torch.stack(gathered), owns=torch.stack(owns),
                               num_valid=int(model.contrast_loss.last_num_valid),
                               contrast=float(model.contrast_loss(model.features(crops), masks,
                                                                  generator=torch.Generator().manual_seed(0))),
                               projection_grad=model.contrast_loss.projection[0].weight.grad.abs().sum().item())
            opt.step()
        results["step2_grads_equal"] = bool(torch.equal(gathered[0], gathered[1]))
        valid = torch.tensor([results["num_valid"]])
        all_valid = [torch.zeros_like(valid) for _ in range(WORLD)]
        dist.all_gather(all_valid, valid)
        results["num_valid_per_rank"] = [int(v) for v in all_valid]
        if rank == 1:
            results["rank1_contrast"] = results["contrast"]
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("case", ["all_valid", "all_bg", "empty"])
def test_dcl_under_ddp_gloo_two_processes(tmp_path, case):
    out = str(tmp_path / "result")
    mp.start_processes(_worker, args=(str(tmp_path / "init"), case, out), nprocs=WORLD,
                       start_method="spawn", join=True)
    r0, r1 = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    # DDP's gradient: identical on both ranks and the mean of the ranks' own gradients.
    assert torch.equal(r0["gathered"][0], r0["gathered"][1])
    torch.testing.assert_close(r0["gathered"][0], r0["owns"].mean(0), rtol=1e-5, atol=1e-7)
    assert r0["step2_grads_equal"] and r1["step2_grads_equal"]
    assert r0["num_valid_per_rank"][0] == 3
    if case == "all_valid":
        assert r0["num_valid_per_rank"][1] == 3
    else:
        assert r0["num_valid_per_rank"][1] == 0
        assert r1["rank1_contrast"] == 0.0  # the exact-zero path on rank 1
        # Rank 1 contributed no contrastive gradient, yet its projection received rank 0's.
        assert r1["projection_grad"] > 0

"""Per-step cost of ContrastMask's loss against DCL's on the same batch of RoI features.

Both losses get the same ``[R, C, H, W]`` features (requiring grad, as a mask head's do) and the
same elliptical masks; one step is forward + backward of the loss alone, parameters included
(DCL: its 1x1 projection; ContrastMask: its contrastive head, by default the official 8-conv
encoder and projector). The median of ``--repeats`` timed steps after ``--warmup`` untimed ones
is reported per loss, and the ratio to DCL, in wall time and in the process's CPU time (on a
shared machine, CPU time at ``--threads 1`` is the steadier of the two: other processes stretch
the wall time, not the CPU time).

    OMP_NUM_THREADS=1 python -m bench.bench_contrastmask_loss --threads 1 --rois 64 \
        --channels 128 --out bench_contrastmask.json
    # a narrower contrastive head:
    python -m bench.bench_contrastmask_loss --contrastmask embed_channels=64 num_encoder_convs=1

``--contrastmask KEY=VALUE ...`` sets ContrastMaskSettings (the CLI's ``--loss`` words); the
loss is always built with ``detach_features=False`` so both losses send gradients to the
features (the same-baseline comparison's setting).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from analysis.io import write_json_atomic
from bench.bench_dcl_loss import make_masks, time_step
from dcl_core import ContrastMaskSettings, DCLSettings, build_loss, parse_losses


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rois", type=int, nargs="+", default=[64], help="R values")
    parser.add_argument("--channels", type=int, default=256, help="C of the RoI features")
    parser.add_argument("--size", type=int, default=28, help="H = W of the RoI map")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--contrastmask", nargs="*", default=[], metavar="KEY=VALUE",
                        help="ContrastMask settings besides detach_features=False")
    parser.add_argument("--out", default=None, help="JSON output path")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0 or min(args.rois) < 1:
        parser.error("--repeats and every --rois must be >= 1, --warmup >= 0")
    try:
        (args.cm_settings,) = parse_losses(["contrastmask", "detach_features=False",
                                            *args.contrastmask])
    except (TypeError, ValueError) as e:
        parser.error(f"--contrastmask: {e}")
    return args


def bench(args) -> list[dict]:
    device = torch.device(args.device)
    records = []
    for r in args.rois:
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(1)
        features = torch.randn(r, args.channels, args.size, args.size, generator=gen)
        features = features.to(device).requires_grad_()
        masks = make_masks(r, args.size, gen, device)
        draws = torch.Generator(device=device).manual_seed(2)
        losses = {"dcl": build_loss(DCLSettings(max_rois=None), args.channels),
                  "contrastmask": build_loss(args.cm_settings, args.channels)}
        base = None
        for name, module in losses.items():
            module = module.to(device)

            def step(module=module):
                features.grad = None
                module.zero_grad(set_to_none=True)
                loss = module(features, masks, generator=draws)
                loss.backward()
                return loss

            timing = time_step(step, device, args.warmup, args.repeats)
            cpu_ms = []
            for _ in range(args.repeats if device.type == "cpu" else 0):
                start = time.process_time()
                step()
                cpu_ms.append((time.process_time() - start) * 1e3)
            timing["median_cpu_ms"] = statistics.median(cpu_ms) if cpu_ms else None
            base = base or timing
            records.append({
                "loss": name, "device": str(device), "rois": r, "channels": args.channels,
                "size": args.size, "threads": torch.get_num_threads(),
                "parameters": sum(p.numel() for p in module.parameters()),
                "variant": module.settings.variant_name() if name == "contrastmask"
                else DCLSettings(max_rois=None).variant_name(),
                "ratio_to_dcl": timing["median_ms"] / base["median_ms"],
                "cpu_ratio_to_dcl": (timing["median_cpu_ms"] / base["median_cpu_ms"]
                                     if timing["median_cpu_ms"] else None), **timing})
    return records


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    records = bench(args)
    print(f"{'loss':<14}{'R':>5}{'C':>6}{'params':>10}{'median ms':>12}{'q1-q3 ms':>18}{'x DCL':>8}"
          f"{'CPU ms':>11}{'x DCL':>8}")
    for rec in records:
        cpu = rec["median_cpu_ms"]
        print(f"{rec['loss']:<14}{rec['rois']:>5}{rec['channels']:>6}{rec['parameters']:>10}"
              f"{rec['median_ms']:>12.1f}{rec['q1_ms']:>9.1f}-{rec['q3_ms']:<8.1f}"
              f"{rec['ratio_to_dcl']:>8.2f}"
              + (f"{cpu:>11.1f}{rec['cpu_ratio_to_dcl']:>8.2f}" if cpu is not None else ""))
    if args.out:
        write_json_atomic(args.out, {"argv": sys.argv[1:], "torch": torch.__version__,
                                     "machine": platform.machine(), "records": records},
                          indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where a training step's time goes, and what the CPU dropout saves: one model, alternating variants.

    python bench/train_step.py [--precision fp32] [--steps 20] [--rounds 3] [--profile]

Trains the cpu-default model (MiniLM-L6, frozen embeddings, dropout 0.1, linear head, fused AdamW) on a fixed
batch of 32 x 28 random tokens, with emoscope's CPU dropout (what training uses) and with PyTorch's own, in
alternating rounds in one process, and prints the step time of each round and the median ratio. `--profile`
adds `torch.profiler`'s table of the ops that took the most time, for each variant.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch

from emoscope.models import build_classifier
from emoscope.models.dropout import use_cpu_dropout
from emoscope.models.inference import autocast


def make_step(model, precision: str, batch: tuple):
    ids, mask, y = batch
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)

    def step():
        with autocast(torch.device("cpu"), precision):
            logits = model(ids, mask)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def seconds_per_step(step, steps: int) -> float:
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    torch_dropout = build_classifier("all-MiniLM-L6-v2", "linear", 28, head_dropout=0.1).train()
    torch_dropout.freeze(None, freeze_embeddings=True)
    cpu_dropout = use_cpu_dropout(copy.deepcopy(torch_dropout))
    batch = (
        torch.randint(1000, 20000, (32, 28)),
        torch.ones(32, 28, dtype=torch.long),
        torch.rand(32, 28).lt(0.05).float(),
    )
    steps = {
        "torch dropout": make_step(torch_dropout, args.precision, batch),
        "cpu dropout": make_step(cpu_dropout, args.precision, batch),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append(seconds_per_step(step, args.steps))
    for name, each in times.items():
        print(f"{name:14s} ms/step: " + ", ".join(f"{1000 * t:.1f}" for t in each))
    ratios = [a / b for a, b in zip(times["torch dropout"], times["cpu dropout"], strict=True)]
    print(
        f"cpu dropout speed-up, median of {args.rounds} rounds: {np.median(ratios):.2f}x "
        f"({min(ratios):.2f}-{max(ratios):.2f}x), {args.precision}, {args.threads} threads"
    )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        for name, step in steps.items():
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(5):
                    step()
            print(f"\n{name}:\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()

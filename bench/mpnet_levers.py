"""Training MPNet-base (110M) on the CPU: examples/s, minutes per epoch and MFU, lever by lever.

    python bench/mpnet_levers.py [--steps 8] [--rounds 2] [--threads 2] [--backbone all-mpnet-base-v2]

One process holds one model and runs every variant in alternating rounds on the same real GoEmotions train
texts (batch 32, max length 64): fp32 against bf16, every layer trained against the last 6 (the bottom frozen,
as `--train_last_layers 6`), the frozen bottom run each step against computed once (`--cache_frozen_layers`),
and batches of similar length (`group_by_length`) against random ones. A step does what the loop's does: forward,
BCE, backward, clipping, fused AdamW. Minutes per epoch are for the 43,410 train texts; the cache's one-off
cost is shown beside them. MFU counts the model FLOPs each variant must do (3x forward where it trains, 1x
where it only runs forward, nothing for cached layers) over a matmul peak in the same dtype and threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEAK_DTYPES, checked_mfu, data_dir, forward_flops, matmul_peak_gflops, report  # noqa: E402

TRAIN_TEXTS = 43_410
VARIANTS = {  # name: (precision, trained layers or None for all, cached bottom, group by length)
    "fp32 all layers": ("fp32", None, False, True),
    "bf16 all layers": ("bf16", None, False, True),
    "bf16 all layers, random batches": ("bf16", None, False, False),
    "bf16 last 6": ("bf16", 6, False, True),
    "bf16 last 6, cached bottom": ("bf16", 6, True, True),
    "bf16 last 3, cached bottom": ("bf16", 3, True, True),
}


def load(args):
    from emoscope.core.config import resolve_config
    from emoscope.data.batching import encode_texts
    from emoscope.data.splits import load_data
    from emoscope.evaluate.metrics import as_indicator_matrix
    from emoscope.models.backbone import load_tokenizer, resolve_backbone

    config = resolve_config(
        "cpu-default",
        {"data_dir": data_dir(), "backbone": args.backbone, "max_train_examples": args.texts, "max_eval_examples": 8},
    )
    data = load_data(config)
    ids = encode_texts(load_tokenizer(resolve_backbone(args.backbone)), [e.text for e in data.train], 64)
    y = as_indicator_matrix([e.labels for e in data.train], "train", len(data.taxonomy.labels)).astype(np.float32)
    return ids, torch.from_numpy(y)


def make_variant(model, ids, y, precision, trained, cached, grouped):
    """A step function over this variant's batches, the seconds its cache took to build (0 when none), and the
    share of a full training step's FLOPs the variant does."""
    from emoscope.data.batching import batch_plan, collate
    from emoscope.models.backbone import encoder_layers
    from emoscope.models.frozen import FrozenBottom
    from emoscope.models.inference import autocast

    for p in model.parameters():
        p.requires_grad_(True)
    model.freeze(trained, freeze_embeddings=True)
    frozen, build = None, 0.0
    if cached:
        start = time.perf_counter()
        frozen = FrozenBottom(model, trained, ids, 0, torch.device("cpu"), precision)
        build = time.perf_counter() - start
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=True)
    plan = batch_plan([len(x) for x in ids], 32, 0, 0, group_by_length=grouped)
    n_layers = len(encoder_layers(model.backbone))
    state = {"i": 0}

    def step() -> int:
        rows = plan[state["i"] % len(plan)]
        state["i"] += 1
        batch = collate([ids[r] for r in rows], 1)
        with autocast(torch.device("cpu"), precision):
            if frozen is not None:
                logits = frozen(batch["input_ids"], batch["attention_mask"], rows=rows)
            else:
                logits = model(batch["input_ids"], batch["attention_mask"])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y[rows])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return len(rows)

    trained_share = 1.0 if trained is None else trained / n_layers
    flops_factor = 3 * trained_share + (0 if cached else 1 - trained_share)
    return step, build, flops_factor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="all-mpnet-base-v2")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--texts", type=int, default=2048, help="train texts the batches are drawn from")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from emoscope.models import build_classifier
    from emoscope.models.dropout import use_cpu_dropout

    ids, y = load(args)
    model = use_cpu_dropout(build_classifier(args.backbone, "linear", y.shape[1], head_dropout=0.1).train())
    flops_per_text = forward_flops([len(x) for x in ids], model.backbone.config) / len(ids)
    peaks = {p: matmul_peak_gflops(dtype=PEAK_DTYPES[p]) for p in ("fp32", "bf16")}
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    builds: dict[str, float] = {}
    factors: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, (precision, trained, cached, grouped) in VARIANTS.items():
            step, builds[name], factors[name] = make_variant(model, ids, y, precision, trained, cached, grouped)
            step()  # warm-up
            start, examples = time.perf_counter(), 0
            for _ in range(args.steps):
                examples += step()
            rates[name].append(examples / (time.perf_counter() - start))
    base = np.median(rates["fp32 all layers"])
    rows, result = [], {"args": vars(args), "peak_gflops": peaks, "variants": {}}
    for name, (precision, *_rest) in VARIANTS.items():
        rate = float(np.median(rates[name]))
        mfu = checked_mfu(rate * flops_per_text * factors[name], peaks[precision], name)
        cache_min = builds[name] / len(ids) * TRAIN_TEXTS / 60
        epoch_min = TRAIN_TEXTS / rate / 60
        rows.append(
            (name, f"{rate:.1f}", f"{rate / base:.2f}x", f"{epoch_min:.0f}", f"{cache_min:.1f}", f"{100 * mfu:.0f}%")
        )
        result["variants"][name] = {
            "examples_per_s": rates[name],
            "minutes_per_epoch": epoch_min,
            "cache_minutes": cache_min,
            "mfu": mfu,
        }
    header = ("variant", "examples/s", "vs fp32", "min/epoch", "cache min (once)", "MFU")
    report("mpnet_levers", rows, header, result)


if __name__ == "__main__":
    main()

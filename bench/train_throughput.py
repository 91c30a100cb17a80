"""Training throughput: emoscope's loop against the Hugging Face Trainer, side by side.

    python bench/train_throughput.py [--steps 40] [--batch-size 32] [--max-len 64] [--threads 2] [--pairs 3] [--set F=V]

Both train the default backbone (all-MiniLM-L6-v2) for multi-label GoEmotions for two epochs on the same
random subset of `--steps` batches of train, with the same batch size, maximum length and threads. The peer
is `Trainer` with `AutoModelForSequenceClassification(problem_type="multi_label_classification")` and its
defaults otherwise (fp32, random batches padded to their longest text). emoscope runs its real `train()`
with the cpu-default preset. Examples/s are counted over the second epoch (the first is the warm-up), so
both systems are timed on exactly the same examples. MFU is model FLOPs on real tokens (3x forward) per
second over the matmul peak of `common.matmul_peak_gflops` in the system's own precision and thread count,
measured in the same process (a row above 100% fails the bench). Each system runs
in its own child process, and the two alternate (`--pairs`, 3 by default): the table shows the median
ratio over the pairs and its range.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from emoscope.core.runfolder import METRICS_LOG
from emoscope.train.setup import peak_rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PEAK_DTYPES,
    checked_mfu,
    data_dir,
    forward_flops,
    matmul_peak_gflops,
    report,
    run_child,
)


def bench_config(args, run_dir: str):
    from emoscope.core.config import resolve_config

    return resolve_config(
        "cpu-default",
        {
            "data_dir": data_dir(),
            "max_train_examples": args.steps * args.batch_size,
            "max_eval_examples": 64,
            "epochs": 2,
            "batch_size": args.batch_size,
            "max_len": args.max_len,
            "num_threads": args.threads,
            "log_every": 1,
            "progress": False,
            "run_dir": run_dir,
            "checkpoint_every": 10**9,
            "precision": args.precision,
            **{key: yaml.safe_load(value) for key, value in (kv.split("=", 1) for kv in args.set)},
        },
    )


def train_examples(args):
    """The subset both systems train on, and its token counts."""
    from emoscope.data.splits import load_data
    from emoscope.models.backbone import load_tokenizer, resolve_backbone

    config = bench_config(args, "")
    data = load_data(config)
    tokenizer = load_tokenizer(resolve_backbone(config.backbone))
    ids = tokenizer([e.text for e in data.train], truncation=True, max_length=args.max_len)["input_ids"]
    return data, tokenizer, ids


def run_emoscope(args) -> dict:
    from emoscope.models.backbone import load_backbone, resolve_backbone
    from emoscope.train.loop import train

    with tempfile.TemporaryDirectory() as tmp:
        trained = train(bench_config(args, str(Path(tmp) / "run")))
        steps = [json.loads(line) for line in (trained.run_dir / METRICS_LOG).read_text().splitlines()]
        seconds = [args.batch_size / r["examples_per_s"] for r in steps if r["kind"] == "step" and r["epoch"] == 2]
        precision = trained.precision
    _, _, ids = train_examples(args)
    config = load_backbone(resolve_backbone("all-MiniLM-L6-v2")).config
    return {
        "seconds": seconds,
        "flops_per_example": 3 * forward_flops([len(x) for x in ids], config) / len(ids),
        "rss_mb": peak_rss_mb(),
        "precision": precision,
    }


def run_trainer(args) -> dict:
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from emoscope.evaluate.metrics import as_indicator_matrix
    from emoscope.models.backbone import resolve_backbone

    data, tokenizer, ids = train_examples(args)
    y = as_indicator_matrix([e.labels for e in data.train], "train", len(data.taxonomy.labels)).astype(np.float32)
    rows = [{"input_ids": x, "attention_mask": [1] * len(x), "labels": y[i].tolist()} for i, x in enumerate(ids)]
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_backbone("all-MiniLM-L6-v2"), num_labels=y.shape[1], problem_type="multi_label_classification"
    )
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_, **__):
            stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        training_args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=2,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=42,
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=rows,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=[Clock()],
        )
        start = time.perf_counter()
        trainer.train()
    stamps.insert(0, start)
    seconds = np.diff(stamps).tolist()
    return {
        "seconds": seconds[args.steps :],
        "flops_per_example": 3 * forward_flops([len(x) for x in ids], model.config) / len(ids),
        "rss_mb": peak_rss_mb(),
        "precision": "fp32",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    parser.add_argument("--pairs", type=int, default=3, help="interleaved (trainer, emoscope) pairs to time")
    parser.add_argument("--precision", default="auto", help="emoscope's precision (the Trainer's default is fp32)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of emoscope's cpu-default config, e.g. --set freeze_embeddings=false",
    )
    parser.add_argument("--system", choices=("emoscope", "trainer"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    if args.system:
        result = run_emoscope(args) if args.system == "emoscope" else run_trainer(args)
        result["peak_gflops"] = matmul_peak_gflops(dtype=PEAK_DTYPES[result["precision"]])
        print(json.dumps(result))
        return

    # Interleaved (trainer, emoscope, trainer, emoscope, ...): a slow spell of a shared machine hits both
    # systems of a pair alike, and the median over pairs ignores one bad pair.
    pairs = [
        {name: run_child(__file__, *sys.argv[1:], "--system", name) for name in ("trainer", "emoscope")}
        for _ in range(args.pairs)
    ]
    rows, summary = [], {}
    for name in ("trainer", "emoscope"):
        runs = [pair[name] for pair in pairs]
        rates = [args.batch_size * len(r["seconds"]) / sum(r["seconds"]) for r in runs]
        rate = float(np.median(rates))
        # The highest peak of the pairs: a child that measured its peak in a slow spell must not inflate MFU.
        mfu = checked_mfu(rate * runs[0]["flops_per_example"], max(r["peak_gflops"] for r in runs), name)
        summary[name] = {
            "examples_per_s": rate,
            "examples_per_s_each": rates,
            "mfu": mfu,
            "peak_rss_mb": max(r["rss_mb"] for r in runs),
            "matmul_peak_gflops": [r["peak_gflops"] for r in runs],
            "precision": runs[0]["precision"],
        }
        rows.append(
            (
                f"{name} [{runs[0]['precision']}]",
                f"{rate:.1f} ({min(rates):.1f}-{max(rates):.1f})",
                f"{100 * mfu:.1f}%",
                f"{summary[name]['peak_rss_mb']:.0f}",
            )
        )
    ratios = [
        e / t
        for t, e in zip(
            summary["trainer"]["examples_per_s_each"], summary["emoscope"]["examples_per_s_each"], strict=True
        )
    ]
    ratio = float(np.median(ratios))
    rows.append(
        (
            f"ratio emoscope/trainer, median of {args.pairs} pairs",
            f"{ratio:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)",
            "",
            "",
        )
    )
    name = "train_throughput" + (
        "" if args.precision == "auto" and not args.set else "-custom" if args.set else f"-{args.precision}"
    )
    report(
        name,
        rows,
        ("system", "train examples/s, median (range)", "MFU", "peak RSS MB"),
        {
            "args": vars(args) | {"system": None},
            "systems": summary,
            "ratio": ratio,
            "ratio_each_pair": ratios,
            "ratio_range": [min(ratios), max(ratios)],
        },
    )


if __name__ == "__main__":
    main()

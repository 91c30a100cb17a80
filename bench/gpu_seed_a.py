"""Seed A's architecture on a CUDA GPU: RoBERTa-large (random weights, built from its config through the real
`from_pretrained` path), the mlp-attention head, max_len 128, batch 32, fp16 with GradScaler, for a few steps.

    python bench/gpu_seed_a.py [--steps 20] [--precision fp16]

Prints examples/s (the median of the logged windows after the first, which holds the warm-up) and the peak
GPU memory, and writes bench/results/gpu_seed_a.json. No pretrained weights are needed: speed and memory do
not depend on the weights' values. The texts are GoEmotions train texts, as in a real run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from emoscope.core.config import resolve_config
from emoscope.core.runfolder import METRICS_LOG
from emoscope.data.source import load_goemotions
from emoscope.train.loop import train

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import data_dir, report  # noqa: E402
from conftest import bpe_tokenizer  # noqa: E402  (the tests' tiny RoBERTa tokenizer, at roberta-large's size)


def roberta_large_folder(root: Path, texts: list[str]) -> Path:
    """A random-initialised roberta-large and a byte-level BPE tokenizer trained on `texts`, saved as a hub folder."""
    from transformers import AutoModel, RobertaConfig

    tokenizer = bpe_tokenizer(texts, vocab_size=50265, min_frequency=2)
    config = RobertaConfig(  # roberta-large's published config
        vocab_size=50265,
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=514,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    folder = root / "roberta-large-random"
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="fp16", choices=["fp16", "bf16", "fp32"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu_seed_a.py needs a CUDA GPU", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        texts = [e.text for e in load_goemotions(data_dir()).train]
        backbone = roberta_large_folder(Path(tmp), texts)
        config = resolve_config(
            "seed-a",
            {
                "backbone": str(backbone),
                "data_dir": data_dir(),
                "precision": args.precision,
                "epochs": 1,
                "max_train_examples": args.steps * 32,
                "max_eval_examples": 256,
                "log_every": max(1, args.steps // 4),
                "checkpoint_every": 10**6,
                "progress": False,
                "run_dir": str(Path(tmp) / "run"),
            },
        )
        assert config.batch_size == 32 and config.max_len == 128 and config.head == "mlp-attention"
        torch.cuda.reset_peak_memory_stats()
        train(config)
        peak_gb = torch.cuda.max_memory_allocated() / 2**30
        steps = [json.loads(line) for line in (Path(config.run_dir) / METRICS_LOG).read_text().splitlines()]
        rates = [r["examples_per_s"] for r in steps if r["kind"] == "step"][1:]
    rate = statistics.median(rates)
    gpu = torch.cuda.get_device_name()
    report(
        "gpu_seed_a",
        [(gpu, args.precision, str(args.steps), f"{rate:.1f}", f"{peak_gb:.2f}")],
        ("GPU", "precision", "steps", "examples/s", "peak GiB"),
        {"gpu": gpu, "precision": args.precision, "steps": args.steps, "examples_per_s": rate, "peak_gib": peak_gb},
    )
    print(json.dumps({"examples_per_s": rate, "peak_gib": peak_gb}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

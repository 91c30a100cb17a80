"""Inference throughput on the GoEmotions test texts: emoscope against `transformers.pipeline`, side by side.

    python bench/inference.py [--run runs/cpu-default] [--threads 2] [--limit N] [--n 100000] [--rounds 3] [--passes 2]

With `--run`, both score the same trained model: emoscope through `Predictor`, the pipeline through the run's
`emoscope export` folder (same weights, same probabilities). Without it, both use the untrained default
backbone with a 28-label head (speed does not depend on the weights). The pipeline runs with its defaults
(`top_k=None`, one text at a time, fp32) and with `batch_size=64`; emoscope with its defaults (length-sorted
batches of 128, `--precision auto`), in fp32, and, with `--run`, through onnxruntime (`Predictor(run,
backend="onnx")`, and its int8 model with the thresholds chosen on dev for it, `backend="onnx-int8"`; the
run's `onnx/` export is written first if it has none), and one batch at a time over
all the threads instead of one batch per thread (`Predictor(run, workers=1)`, the default until 2026-12-03; for
onnxruntime until 2026-12-04). `--systems` picks some of them (the pipeline and emoscope's defaults always run). Every
system scores the texts `--passes` times in one process and the last pass is timed, so all are measured warm
alike (a corpus of millions of texts sees each batch shape many times). Tokenisation is timed for every
system; MFU is forward FLOPs on real tokens over the matmul peak of `common.matmul_peak_gflops`, in the system's
own precision and thread count, measured in the same process; a row above 100% fails the bench.

With `--run`, one more row scores `--n` texts (the test texts repeated, with ids) from a JSONL file to a Parquet
file through the command line, `emoscope predict RUN --file texts.jsonl --out scores.parquet`, timed end to end:
loading the run, reading, tokenisation, scoring and writing. Its max |dp| compares its first rows, the test
texts once, with the pipeline's.
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


def test_texts(limit: int | None) -> tuple[list[str], np.ndarray]:
    from emoscope.data import load_goemotions
    from emoscope.evaluate.metrics import as_indicator_matrix

    ge = load_goemotions(data_dir())
    test = ge.test[:limit] if limit else ge.test
    return [e.text for e in test], as_indicator_matrix([e.labels for e in test], "test", len(ge.taxonomy.labels))


def load_emoscope(args, option: str):
    """A function texts -> probabilities (tokenisation included), the precision it runs in and its thresholds
    (None without `--run`); `option` is "PRECISION" or "PRECISION:WORKERS" (batches scored at once; default one
    per thread), where "onnx" and "onnx-int8" name the onnxruntime backends."""
    from emoscope.data.batching import encode_texts
    from emoscope.inference.predictor import Predictor
    from emoscope.models import build_classifier
    from emoscope.models.backbone import load_tokenizer, resolve_backbone
    from emoscope.models.inference import predict_probs, prepare_for_inference, resolve_precision

    precision, _, workers = option.partition(":")
    workers = int(workers) if workers else None
    if precision in ("onnx", "onnx-int8"):
        from emoscope.core.runfolder import ONNX_EXPORT, ONNX_INT8_MODEL, ONNX_MODEL
        from emoscope.export.onnx import export_onnx

        int8 = precision == "onnx-int8"
        if not (Path(args.run) / ONNX_EXPORT / (ONNX_INT8_MODEL if int8 else ONNX_MODEL)).is_file():
            export_onnx(args.run, quantize="int8" if int8 else None)
        predictor = Predictor(args.run, backend=precision, workers=workers)
        return predictor.predict_proba, predictor.precision, predictor.thresholds
    if args.run:
        predictor = Predictor(args.run, precision=precision, workers=workers)
        return predictor.predict_proba, predictor.precision, predictor.thresholds
    source = resolve_backbone("all-MiniLM-L6-v2")
    tokenizer = load_tokenizer(source)
    used = resolve_precision(precision, torch.device("cpu"))
    model = prepare_for_inference(build_classifier(source, "linear", 28, head_dropout=0.1), used, torch.device("cpu"))

    def score(texts: list[str]) -> np.ndarray:
        ids = encode_texts(tokenizer, texts, 64, cache=False)
        return predict_probs(model, ids, tokenizer.pad_token_id, 128, torch.device("cpu"), workers=workers)

    return score, used, None


def load_pipeline(args, batch_size: int | None):
    """The same, through `transformers.pipeline(..., top_k=None)`; probabilities in label-id order."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from emoscope.export.hf import export_hf
    from emoscope.models.backbone import resolve_backbone

    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    if args.run:
        folder = export_hf(args.run, Path(tempfile.mkdtemp()) / "hf")
        classify = pipeline(
            "text-classification", model=str(folder), top_k=None, trust_remote_code=True, device="cpu", **kwargs
        )
    else:
        source = resolve_backbone("all-MiniLM-L6-v2")
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=28, problem_type="multi_label_classification"
        )
        classify = pipeline(
            "text-classification",
            model=model,
            tokenizer=AutoTokenizer.from_pretrained(source),
            top_k=None,
            device="cpu",
            **kwargs,
        )
    labels = [classify.model.config.id2label[i] for i in range(classify.model.config.num_labels)]

    def score(texts: list[str]) -> np.ndarray:
        rows = classify(texts, truncation=True, max_length=64)
        return np.array(
            [[{d["label"]: d["score"] for d in row}[label] for label in labels] for row in rows], dtype=np.float32
        )

    return score, "fp32", None


def backbone_config(args):
    """The encoder's config, for its FLOPs: the run's, or the default backbone's."""
    from transformers import AutoConfig

    from emoscope.core.runfolder import BACKBONE_CONFIG
    from emoscope.models.backbone import resolve_backbone

    source = Path(args.run) / BACKBONE_CONFIG if args.run else resolve_backbone("all-MiniLM-L6-v2")
    return AutoConfig.from_pretrained(source)


def run_stream(args) -> dict:
    """The file-to-Parquet row: the command line on `--n` texts, end to end."""
    import pyarrow.parquet as pq

    from emoscope.cli import main as emoscope_main
    from emoscope.models.backbone import load_tokenizer, resolve_backbone

    texts, _ = test_texts(args.limit)
    many = [texts[i % len(texts)] for i in range(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "texts.jsonl", Path(tmp) / "scores.parquet"
        with open(source, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(many))
        argv = ["predict", args.run, "--file", str(source), "--out", str(out), "--progress", "false"]
        start = time.perf_counter()
        if emoscope_main(argv) != 0:
            raise SystemExit("emoscope predict failed")
        seconds = time.perf_counter() - start
        meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
        table = pq.read_table(out).slice(0, len(texts))
        np.save(args.probs_out, np.stack([table.column(label).to_numpy() for label in meta["labels"]], axis=1))
    tokenizer = load_tokenizer(resolve_backbone("all-MiniLM-L6-v2"))
    lengths = [len(x) for x in tokenizer(texts, truncation=True, max_length=64)["input_ids"]]
    return {
        "seconds": seconds,
        "texts": len(many),
        "precision": meta["precision"],
        "flops": forward_flops(lengths, backbone_config(args)) * len(many) / len(texts),
        "peak_gflops": matmul_peak_gflops(dtype=PEAK_DTYPES[meta["precision"]]),
    }


def run_system(args) -> dict:
    """`--passes` timed passes over all the texts after loading; the rate is the last pass's.

    A first pass pays one-time costs (each new batch shape's kernels, allocator growth) that a corpus of
    millions of texts pays once, so with the default of 2 passes every system is measured warm, the same way;
    the first pass's time is kept in the JSON too.
    """
    if args.system == "stream":
        return run_stream(args)
    texts, _ = test_texts(args.limit)
    name, _, option = args.system.partition(":")
    if name == "emoscope":
        score, precision, thresholds = load_emoscope(args, option)
    else:
        score, precision, thresholds = load_pipeline(args, int(option) if option else None)
    pass_seconds = []
    for _ in range(args.passes):
        start = time.perf_counter()
        probs = score(texts)
        pass_seconds.append(time.perf_counter() - start)
    seconds = pass_seconds[-1]
    from emoscope.models.backbone import load_tokenizer, resolve_backbone

    tokenizer = load_tokenizer(resolve_backbone("all-MiniLM-L6-v2"))
    lengths = [len(x) for x in tokenizer(texts, truncation=True, max_length=64)["input_ids"]]
    np.save(args.probs_out, probs)
    return {
        "seconds": seconds,
        "pass_seconds": pass_seconds,
        "precision": precision,
        "flops": forward_flops(lengths, backbone_config(args)),
        # int8 has no matmul peak in this yardstick (torch's float matmuls): its MFU is left out
        "peak_gflops": matmul_peak_gflops(dtype=PEAK_DTYPES[precision]) if precision in PEAK_DTYPES else None,
        "thresholds": None if thresholds is None else [float(t) for t in thresholds],
    }


def macro_f1(y: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, probs >= thresholds, average="macro", zero_division=0))


SYSTEMS = {
    "pipeline": "pipeline (defaults)",
    "pipeline:64": "pipeline batch_size=64",
    "emoscope:auto": "emoscope (defaults)",
    "emoscope:auto:1": "emoscope, one batch at a time on all threads",
    "emoscope:fp32": "emoscope fp32",
    "emoscope:onnx": "emoscope onnxruntime",  # with --run only: it runs the run's ONNX export
    "emoscope:onnx:1": "emoscope onnxruntime, one batch at a time on all threads",
    "emoscope:onnx-int8": "emoscope onnxruntime int8 (its own dev thresholds)",  # with --run only, as onnx
    "stream": "emoscope file -> Parquet (CLI)",  # with --run only: the command line needs a run folder
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run folder (linear head): both systems score its model")
    parser.add_argument("--threads", type=int, default=min(os.cpu_count() or 1, 2))
    parser.add_argument("--limit", type=int, help="only the first N test texts (quick checks)")
    parser.add_argument("--n", type=int, default=100_000, help="texts in the file-to-Parquet row (with --run)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every system (median)")
    parser.add_argument(
        "--passes", type=int, default=2, help="passes over the texts per system and round; the last one is timed"
    )
    parser.add_argument(
        "--systems",
        help="comma-separated systems of SYSTEMS to run (default: all; the pipeline and emoscope:auto always)",
    )
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--probs-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.passes < 1:
        parser.error(f"--passes must be at least 1, got {args.passes}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    if args.system:
        print(json.dumps(run_system(args)))
        return

    texts, y = test_texts(args.limit)
    thresholds = 0.5
    if args.run:
        from emoscope.core.runfolder import read_labels, read_thresholds

        thresholds = read_thresholds(Path(args.run), read_labels(Path(args.run))["labels"])
    results, rows = {}, []
    systems = {s: label for s, label in SYSTEMS.items() if args.run or not s.startswith(("stream", "emoscope:onnx"))}
    if args.systems:
        asked = {"pipeline", "emoscope:auto", *args.systems.split(",")}  # the ratios and the summary need both
        if asked - set(SYSTEMS):
            parser.error(
                f"--systems: unknown {', '.join(sorted(asked - set(SYSTEMS)))}; choose from {', '.join(SYSTEMS)}"
            )
        systems = {s: label for s, label in systems.items() if s in asked}
    # Rounds interleave the systems (all of them once per round, each in its own child) so that a noisy
    # neighbour slows every system alike; rates and ratios to the pipeline are medians over the rounds.
    rates: dict[str, list[float]] = {s: [] for s in systems}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for system in systems:
                probs_path = str(Path(tmp) / f"{system.replace(':', '-')}.npy")
                r = run_child(__file__, *sys.argv[1:], "--system", system, "--probs-out", probs_path)
                rates[system].append(r.get("texts", len(texts)) / r["seconds"])
                if round_:
                    continue
                probs = np.load(probs_path)
                peak = r["peak_gflops"]
                r["mfu"] = checked_mfu(r["flops"] / r["seconds"], peak, system) if peak else None
                own = r.get("thresholds")  # the int8 model's are its own, chosen on dev for it
                r["test_macro_f1"] = macro_f1(y, probs, np.array(own) if own else thresholds) if args.run else None
                r["max_abs_diff_vs_pipeline"] = (
                    float(np.abs(probs - results["pipeline"]["probs"]).max()) if results else 0.0
                )
                results[system] = r | {"probs": probs}
    for system, r in results.items():
        r["texts_per_s_by_round"] = rates[system]
        r["texts_per_s"] = float(np.median(rates[system]))
        ratios = np.array(rates[system]) / np.array(rates["pipeline"])
        r["vs_pipeline"] = {"median": float(np.median(ratios)), "min": float(ratios.min()), "max": float(ratios.max())}
    for system, label in systems.items():
        r = results[system]
        label = f"{label}, {r['texts']:,} texts" if "texts" in r else label
        f1 = "-" if r["test_macro_f1"] is None else f"{r['test_macro_f1']:.4f}"
        ratio = r["vs_pipeline"]
        rows.append(
            (
                f"{label} [{r['precision']}]",
                f"{r['texts_per_s']:.0f}",
                "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%",
                f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})",
                f"{r['max_abs_diff_vs_pipeline']:.1e}",
                f1,
            )
        )
    summary = {s: {k: v for k, v in r.items() if k != "probs"} for s, r in results.items()}
    report(
        "inference",
        rows,
        ("system", "texts/s (median)", "MFU", "vs pipeline: median (range)", "max |dp|", "test macro-F1"),
        {
            "args": vars(args) | {"system": None, "probs_out": None},
            "texts": len(texts),
            "systems": summary,
            "ratio": results["emoscope:auto"]["vs_pipeline"]["median"],
            "best_ratio": max(r["vs_pipeline"]["median"] for s, r in results.items() if s != "stream"),
            "stream_vs_in_memory": (
                float(np.median(np.array(rates["stream"]) / np.array(rates["emoscope:auto"])))
                if "stream" in rates
                else None
            ),
        },
    )


if __name__ == "__main__":
    main()

"""The emoscope command line: a thin shell over functions anyone can call.

Every user error is one line on stderr and exit code 2; nothing is written when the input is bad.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from emoscope.checks import check_destination
from emoscope.errors import UserError
from emoscope.vocab import LONG_TEXT_MODES, WINDOW_COMBINES


def _train(args: argparse.Namespace) -> None:
    """`train`, `distill` and `crossfit`; `--print-config` resolves and validates the configuration and stops:
    no data, weights or run folder."""
    from emoscope.config import config_overrides, config_yaml, resolve_config

    config = resolve_config(args.preset, config_overrides(args))
    if args.command == "distill" and not config.teachers:
        raise UserError("emoscope distill needs at least one --teacher DIR (a run, ensemble or crossfit folder)")
    if args.command == "crossfit" and args.folds < 2:
        raise UserError(f"--folds must be at least 2, got {args.folds}")
    if args.command == "crossfit" and args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    if getattr(args, "print_config", False):
        print(config_yaml(config), end="")
        return
    from emoscope import recipe

    if args.command == "crossfit":
        recipe.crossfit_run(config, args.folds, args.jobs)
    else:
        recipe.train_run(config)


def _evaluate(args: argparse.Namespace) -> None:
    """Writes into its own folder: the run's eval/ (which `emoscope ensemble` tunes on) stays as training left it."""
    from emoscope.data.splits import load_data
    from emoscope.evaluate.split import score_split
    from emoscope.runfolder import EVALUATIONS, THRESHOLDS

    name = Path(args.file).stem if args.file else args.split
    out = Path(args.out) if args.out else Path(args.run_dir) / EVALUATIONS / name
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file, not a folder")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace its files, or --out another folder")
    check_destination(out)
    predictor = _predictor(args)
    config = predictor.config
    if args.data_dir:
        config.data_dir = args.data_dir
    if args.file:
        from emoscope.data import load_examples, load_taxonomy

        taxonomy = load_taxonomy(config.taxonomy, config.data_dir)
        _check_labels(taxonomy.labels, predictor)
        examples = load_examples(args.file, taxonomy, skip_bad_rows=args.skip_bad_rows)
    else:
        data = load_data(config)
        _check_labels(data.taxonomy.labels, predictor)
        examples = getattr(data, args.split)
    probs = predictor.predict_proba([e.text for e in examples], args.batch_size)
    print(
        score_split(
            out,
            name,
            examples,
            probs,
            predictor.thresholds,
            predictor.labels,
            title=f"{name} (thresholds from {predictor.run_dir / THRESHOLDS})",
        )
    )
    print(f"evaluation: {out}")


def _check_labels(labels: tuple[str, ...], predictor) -> None:
    """Label ids index the label files' order: scoring with other label files would be silently wrong."""
    from emoscope.runfolder import LABELS

    data, run = list(labels), predictor.labels
    if data != run:
        i = next(i for i in range(max(len(data), len(run))) if data[i : i + 1] != run[i : i + 1])
        ours, theirs = (repr(seq[i]) if i < len(seq) else "missing" for seq in (data, run))
        raise UserError(
            f"the data's label files disagree with {predictor.run_dir / LABELS}: label {i} is "
            f"{ours} in the data, {theirs} in the run"
        )


def _predict(args: argparse.Namespace) -> None:
    """Texts on the command line, a file streamed to an output (`--shard`: one shard of it; under torchrun each
    rank scores its shard and rank 0 merges), or `--merge` of finished shards."""
    from emoscope import corpus

    if args.merge:
        if args.run_dir or args.file:
            raise UserError("--merge OUT SHARD_DIR... takes no run folder or --file: the shards hold what they scored")
        manifest = corpus.merge_shards(args.merge[0], args.merge[1:], overwrite=args.overwrite)
        print(f"merged {manifest['rows']} texts -> {args.merge[0]}")
        return
    if not args.run_dir:
        raise UserError("give a run folder: emoscope predict RUN texts... or --file IN --out OUT")
    if not args.texts and not args.file:
        raise UserError("give texts to score, or --file with one text per line / a CSV, TSV, JSONL or Parquet")
    if args.file and not args.out:
        raise UserError("--file needs --out (a .jsonl, .csv or .parquet path)")
    long_text = {"long_text": args.long_text, "stride": args.stride, "combine": args.combine}
    launched = corpus.torchrun_shard() if args.file and args.shard is None else None
    shard = corpus.parse_shard(args.shard) if args.shard else launched or (0, 1)
    device = args.device
    if launched and os.environ.get("LOCAL_RANK") is not None and device in (None, "cuda"):
        import torch

        device = f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else device
    predictor = _predictor(args, device, backend=args.backend)
    if args.file:
        options = corpus.ScoreOptions(
            text_column=args.text_column,
            header=not args.no_header,
            keep_columns=args.keep_columns,
            chunk_size=args.chunk_size,
            skip_bad_rows=args.skip_bad_rows,
            top_k=args.top_k,
            batch_size=args.batch_size,
            **long_text,
        )
        out = Path(args.out)
        manifest = corpus.score_file(
            predictor, args.file, out, options, shard, overwrite=args.overwrite, progress=args.progress == "true"
        )
        if manifest["skipped_rows"]:
            print(f"skipped {manifest['skipped_rows']} bad rows (first: {manifest['first_skipped'][0]})")
        if manifest["chunks_done_before"]:
            print(f"continued: {manifest['chunks_done_before']} chunks were done before")
        if shard[1] > 1:
            print(f"scored shard {shard[0]}/{shard[1]} -> {corpus.work_folder(out, shard)}")
            if launched and shard[0] == 0:
                shards = [corpus.work_folder(out, (i, shard[1])) for i in range(shard[1])]
                corpus.merge_shards(out, shards, overwrite=args.overwrite, wait=True)
                print(f"merged {manifest['rows']} texts -> {out}")
            return
        print(f"scored {manifest['rows']} texts -> {out}")
        return
    for result in predictor.predict(args.texts, top_k=args.top_k, batch_size=args.batch_size, **long_text):
        print(result["text"])
        for label, prob in result["top"]:
            mark = "*" if label in result["predicted"] else " "
            print(f"  {mark} {label:<15} {prob * 100:6.2f}%")
    print("(* = above the emotion's threshold chosen on dev)")


def _predictor(args: argparse.Namespace, device: str | None = None, backend: str = "torch"):
    """The run (or ensemble) as `--device`, `--precision`, `--num_threads` and `--workers` ask."""
    from emoscope.predict import Predictor

    if args.num_threads:
        import torch

        torch.set_num_threads(args.num_threads)
    return Predictor(
        args.run_dir,
        device=device or args.device,
        precision=args.precision,
        trust_pickle=args.trust_pickle,
        backend=backend,
        workers=args.workers,
    )


def _analyze(args: argparse.Namespace) -> None:
    from emoscope.analysis import run_analysis
    from emoscope.analysis.run import Uncertainty

    run_dirs = [Path(r) for r in args.run_dir]
    if (len(run_dirs) > 1) != (args.out is not None):
        raise UserError("--out DIR goes with several runs (the across-run tables), and only with them")
    for folder in [*run_dirs, *([args.out] if args.out else [])]:
        check_destination(folder)
    if args.capture is not None:
        from emoscope.analysis.capture import capture_weights

        for run_dir in run_dirs:
            capture_weights(run_dir, args.capture, args.capture_epoch, args.probe_size, args.pooling, args.data_dir)
    if args.out is not None:
        from emoscope.analysis.multirun import check_same_probe

        check_same_probe(run_dirs)
    points = args.points.split(",") if args.points else None
    uncertainty = Uncertainty(args.resamples, args.permutations, args.seed)
    for run_dir in run_dirs:
        print(f"analysis: {run_analysis(run_dir, points=points, tsne=not args.no_tsne, uncertainty=uncertainty)}")
        if args.ablation:
            from emoscope.analysis.ablation import layer_ablation

            print(f"layer ablation: {layer_ablation(run_dir, args.resamples, args.seed)}")
    if args.out is not None:
        from emoscope.analysis.multirun import multi_run_analysis

        print(f"across runs: {multi_run_analysis(run_dirs, args.out)}")


def _export(args: argparse.Namespace) -> None:
    if args.format == "onnx":
        from emoscope.onnx_model import INT8_MAX_F1_DROP, export_onnx

        done = export_onnx(args.run_dir, args.out, args.quantize)
        print(f"onnx export: {done.folder} (max |p - torch| {done.max_abs_diff:.1e} on {done.texts} test texts)")
        if done.macro_f1:
            dev, test = done.macro_f1["dev"], done.macro_f1["test"]
            print(
                f"int8: dev macro-F1 {dev['int8']:.4f} (2-fold) against fp32's {dev['fp32']:.4f}: "
                + (
                    "written, score with --backend onnx-int8"
                    if done.int8_written
                    else f"not written (it loses more than {INT8_MAX_F1_DROP}); the fp32 model is"
                )
                + f"; test macro-F1 {test['int8']:.4f} (fp32 {test['fp32']:.4f}), reported after the choice"
            )
        return
    if args.quantize:
        raise UserError("--quantize applies to --format onnx only")
    from emoscope.export.hf import export_transformers

    out, remote_code = export_transformers(args.run_dir, args.out)
    print(f"transformers export: {out}" + (f" ({remote_code})" if remote_code else ""))


def _report(args: argparse.Namespace) -> None:
    from emoscope.report import write_report
    from emoscope.runfolder import REPORT

    check_destination(Path(args.run_dir) / REPORT)
    print(f"report: {write_report(Path(args.run_dir))}")


def _compare(args: argparse.Namespace) -> None:
    from emoscope.report import write_comparison

    check_destination(args.out)
    print(f"comparison: {write_comparison([Path(r) for r in args.run_dirs], Path(args.out))}")


def _baseline(args: argparse.Namespace) -> None:
    from emoscope.data import load_goemotions
    from emoscope.evaluate.baseline import run_baseline_on
    from emoscope.evaluate.metrics import format_table

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it")
    check_destination(out)
    data = load_goemotions(args.data_dir, taxonomy=args.taxonomy, skip_bad_rows=args.skip_bad_rows)
    result = run_baseline_on(data, out, threshold_strategy=args.threshold_strategy, seed=args.seed)
    print(
        format_table(
            result, title=f"TF-IDF + logistic regression, test ({args.threshold_strategy} thresholds chosen on dev)"
        )
    )
    print(f"baseline folder: {out}")


def _ensemble(args: argparse.Namespace) -> None:
    from emoscope.evaluate.ensemble import build_ensemble

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it")
    check_destination(out)
    build_ensemble(args.run_dirs, out, baseline=args.baseline, threshold_strategy=args.threshold_strategy)
    print(f"ensemble folder: {out}")


def _data(args: argparse.Namespace) -> None:
    from emoscope.data import load_goemotions, resolve_data_dir, verify_data_dir

    data_dir = resolve_data_dir(args.data_dir)
    report = verify_data_dir(data_dir)
    data = load_goemotions(data_dir, taxonomy=args.taxonomy)
    print(
        json.dumps(
            {
                "data_dir": str(data_dir),
                "verified": report,
                "taxonomy": data.taxonomy.name,
                "labels": len(data.taxonomy.labels),
                "examples": {"train": len(data.train), "dev": len(data.dev), "test": len(data.test)},
            },
            indent=1,
            default=str,
        )
    )


TRUST_PICKLE = ("--trust-pickle", "--trust_pickle")
TRUST_PICKLE_HELP = "load pickled weights (.bin, .pth) too: unpickling can run code, so only from a trusted source"


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1, got {text!r}")
    return int(text)


def _add_scoring_options(p: argparse.ArgumentParser) -> None:
    """Where and how a run scores texts: the same flags for `predict` and `evaluate`."""
    from emoscope.vocab import PRECISIONS

    group = p.add_argument_group("scoring")
    group.add_argument(
        "--device",
        help="cpu, cuda or cuda:N (default: cuda where torch sees a GPU, else cpu; under torchrun the rank's GPU)",
    )
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="default: the run's own, resolved on this device (auto: bf16 where the hardware runs it natively)",
    )
    group.add_argument(
        "--batch-size",
        "--batch_size",
        dest="batch_size",
        type=_positive_int,
        default=128,
        help="texts per batch (default: 128)",
    )
    group.add_argument(
        "--num-threads",
        "--num_threads",
        dest="num_threads",
        type=_positive_int,
        help="CPU threads for torch and onnxruntime (default: torch's, one per core); on a shared node, the cores "
        "the job was given",
    )
    group.add_argument(
        "--workers",
        type=_positive_int,
        help="CPU batches scored at once, one thread each (default: one per thread; 1: one batch at a time over "
        "all threads)",
    )


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are one line too, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from emoscope.config import ConfigHelpFormatter, add_config_arguments
    from emoscope.vocab import (
        BACKENDS,
        EXPORT_FORMATS,
        POOLINGS,
        QUANTIZATIONS,
        TAXONOMIES,
        THRESHOLD_STRATEGIES,
        TUNED_THRESHOLD_STRATEGY,
    )

    parser = _Parser(prog="emoscope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    trainers = {
        "train": (
            "fine-tune a model; any config field can be set as --field value",
            "Fine-tune a model: a preset, then any field of the configuration as --field value.",
        ),
        "distill": (
            "train one student on the gold labels and its teachers' probabilities (--teacher DIR ...)",
            "Train a student (any field as --field value) on the gold labels plus the mean probability of "
            "its teachers on the train texts: run, ensemble or crossfit folders (--teacher DIR, repeatable). "
            "The teachers' probabilities are cached in the run folder's teachers/.",
        ),
        "crossfit": (
            "train k teachers, each without one fold of train, into one teacher folder",
            "Train --folds teachers (any field as --field value), teacher k without fold k of train, in "
            "RUN_DIR/fold_<k>/; RUN_DIR becomes their ensemble and holds every train text's out-of-fold "
            "probabilities, for emoscope distill --teacher RUN_DIR.",
        ),
    }
    for name, (summary, description) in trainers.items():
        p = sub.add_parser(
            name,
            help=summary,
            description=description,
            formatter_class=ConfigHelpFormatter,
            usage="%(prog)s [--preset NAME|FILE] [--FIELD VALUE ...] [--print-config]",
        )
        p.add_argument(
            "--print-config",
            "--print_config",
            dest="print_config",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print the resolved configuration as YAML and stop",
        )
        if name == "crossfit":
            p.add_argument("--folds", type=int, default=4, help="folds of train, one teacher each (default: 4)")
            p.add_argument(
                "--jobs",
                type=int,
                default=1,
                help="teachers trained side by side, each in its own process with an equal share of the CPU "
                "threads (default: 1, one after another); on 2 cores, 2 jobs trained 1.5x as many examples "
                "per second as one",
            )
        add_config_arguments(p)
        p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="score a run folder on a split or a labelled file")
    p.add_argument("run_dir")
    p.add_argument("--split", choices=("dev", "test"), default="test")
    p.add_argument("--file", help="a labelled file in any supported layout")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--skip-bad-rows", "--skip_bad_rows", dest="skip_bad_rows", action="store_true")
    p.add_argument(
        "--out",
        help="the folder to write (default: RUN_DIR/evaluations/<split or file stem>); the "
        "run's own eval/ is never touched unless named here",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing --out folder")
    p.add_argument(*TRUST_PICKLE, dest="trust_pickle", action="store_true", help=TRUST_PICKLE_HELP)
    _add_scoring_options(p)
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "predict",
        help="top-k emotions for texts, or a whole file streamed in chunks (resumable, shardable)",
        description="Score texts, or a file: read in chunks, written chunk by chunk into OUT.partial/ (a rerun of "
        "the same command continues after a kill) and assembled into OUT at the end, with OUT.meta.json "
        "recording how. Under torchrun each rank scores one shard and rank 0 merges them.",
    )
    p.add_argument("run_dir", nargs="?", help="a run folder, or an emoscope ensemble / crossfit folder")
    p.add_argument("texts", nargs="*")
    p.add_argument("--file", help=".txt (one text a line), .csv, .tsv, .jsonl or .parquet of texts")
    p.add_argument("--out", help=".jsonl, .csv or .parquet output for --file (never replaced without --overwrite)")
    p.add_argument(
        "--text-column",
        "--text_column",
        dest="text_column",
        help="the column (JSONL: field) holding the text (default: 'text'; with --no_header: column_1)",
    )
    p.add_argument(
        "--no-header",
        "--no_header",
        dest="no_header",
        action="store_true",
        help="the CSV/TSV has no header: its first row is a text, its columns are column_1, column_2, ...",
    )
    p.add_argument(
        "--keep-columns",
        "--keep_columns",
        dest="keep_columns",
        default="all",
        help="input columns carried into the output, comma-separated, 'all' or 'none' (default: all, so ids "
        "survive; with --no_header they are column_2, column_3, ...)",
    )
    p.add_argument(
        "--chunk-size",
        "--chunk_size",
        dest="chunk_size",
        type=_positive_int,
        default=4096,
        help="rows per chunk (default 4096)",
    )
    p.add_argument(
        "--skip-bad-rows",
        "--skip_bad_rows",
        dest="skip_bad_rows",
        action="store_true",
        help="skip bad rows (counted, and recorded in OUT.meta.json) instead of stopping at the first",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUT (and unfinished work of other options)"
    )
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="score every N-th chunk from chunk I into OUT.shard-I-of-N/; join the N shards with --merge "
        "(under torchrun: RANK/WORLD_SIZE, merged by rank 0)",
    )
    p.add_argument(
        "--merge", nargs="+", metavar=("OUT", "SHARD_DIR"), help="join finished shard folders into OUT, in input order"
    )
    p.add_argument(
        "--long-text",
        "--long_text",
        dest="long_text",
        choices=LONG_TEXT_MODES,
        default="truncate",
        help="a text longer than the run's max_len: cut it there, or score overlapping windows of max_len tokens "
        "and combine them (default: truncate)",
    )
    p.add_argument(
        "--stride",
        type=int,
        help="with --long_text chunk, tokens shared by neighbouring windows (default: a quarter of max_len)",
    )
    p.add_argument(
        "--combine",
        choices=WINDOW_COMBINES,
        default="max",
        help="with --long_text chunk, a text's probabilities from its windows' (default: max)",
    )
    p.add_argument("--top-k", "--top_k", dest="top_k", type=_positive_int, default=5, help="emotions shown (default 5)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="onnx: onnxruntime runs RUN_DIR/onnx/model.onnx (emoscope export RUN_DIR --format onnx first); "
        "onnx-int8: its int8 model with thresholds chosen on dev for it (export with --quantize int8)",
    )
    p.add_argument("--progress", choices=("true", "false"), default="true", help="show a progress bar (default: true)")
    p.add_argument(*TRUST_PICKLE, dest="trust_pickle", action="store_true", help=TRUST_PICKLE_HELP)
    _add_scoring_options(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("analyze", help="representation analysis of a run folder's captures (or several runs')")
    p.add_argument("run_dir", nargs="+", help="one run, or several runs of the same probe set with --out")
    p.add_argument("--out", help="with several runs: folder for the across-run metrics and cross-run CKA")
    p.add_argument("--points", help="comma-separated hook points (default: all captured)")
    p.add_argument(
        "--capture",
        nargs="?",
        const="",
        metavar="WEIGHTS",
        help="first capture the probe set through saved weights: the run's best model (default), a "
        "checkpoint folder or a .safetensors file",
    )
    p.add_argument(
        "--capture-epoch",
        "--capture_epoch",
        dest="capture_epoch",
        type=int,
        help="the epoch to file the capture under (default: the one the weights record)",
    )
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--probe-size", "--probe_size", dest="probe_size", type=_positive_int, default=2000)
    p.add_argument("--pooling", choices=POOLINGS, help="default: the run's capture_pooling")
    p.add_argument("--no-tsne", dest="no_tsne", action="store_true")
    p.add_argument(
        "--resamples",
        type=_positive_int,
        default=1000,
        help="bootstrap resamples of the probe (and test) texts per interval",
    )
    p.add_argument("--permutations", type=_positive_int, default=1000, help="label permutations per RSA p-value")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples and permutations")
    p.add_argument(
        "--ablation",
        action="store_true",
        help="also reset each encoder layer to its pre-fine-tuning weights (and, separately, replace its update "
        "by its mean over the probe texts) and write the test F1 drops to analysis/layer_ablation.csv",
    )
    p.set_defaults(func=_analyze)

    p = sub.add_parser(
        "export",
        help="a transformers folder with its model card (--head native: the standard class, which pipeline(...) "
        "loads as it is; other heads: trust_remote_code=True), or an ONNX folder that onnxruntime and tokenizers "
        "run alone",
    )
    p.add_argument("run_dir")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="transformers")
    p.add_argument("--out", help="default: RUN_DIR/hf (transformers) or RUN_DIR/onnx")
    p.add_argument(
        "--quantize",
        choices=QUANTIZATIONS,
        help="onnx: also model.int8.onnx (dynamic quantisation) and thresholds.int8.json (chosen on dev for it), "
        "written only if its dev macro-F1 (2-fold) is within 0.005 of fp32's; the fp32 model is written either way",
    )
    p.set_defaults(func=_export)

    p = sub.add_parser("report", help="write RUN_DIR/report.html")
    p.add_argument("run_dir")
    p.set_defaults(func=_report)

    p = sub.add_parser("compare", help="one page with several runs side by side")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", default="comparison.html")
    p.set_defaults(func=_compare)

    p = sub.add_parser("baseline", help="TF-IDF + logistic regression, scored like a model")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--taxonomy", default="original", choices=TAXONOMIES)
    p.add_argument(
        "--threshold-strategy",
        dest="threshold_strategy",
        default=TUNED_THRESHOLD_STRATEGY,
        choices=THRESHOLD_STRATEGIES,
    )
    p.add_argument("--out", default="runs/baseline-tfidf")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad-rows", "--skip_bad_rows", dest="skip_bad_rows", action="store_true")
    p.set_defaults(func=_baseline)

    p = sub.add_parser("ensemble", help="average finished runs (and blend the baseline), tuned on dev")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--baseline", help="an `emoscope baseline` folder; its share is chosen on dev")
    p.add_argument(
        "--threshold-strategy",
        dest="threshold_strategy",
        choices=THRESHOLD_STRATEGIES,
        help=f"default: the runs' own, when they share one tuned on dev; else {TUNED_THRESHOLD_STRATEGY}",
    )
    p.add_argument("--out", default="runs/ensemble")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_ensemble)

    p = sub.add_parser("data", help="locate (download if needed), verify and summarise GoEmotions")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--taxonomy", default="original", choices=TAXONOMIES)
    p.set_defaults(func=_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except UserError as exc:
        print(f"emoscope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("emoscope: interrupted", file=sys.stderr)
        return 130
    return 0

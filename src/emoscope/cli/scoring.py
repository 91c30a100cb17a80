"""`emoscope predict` and `evaluate`: a run (or ensemble) scoring texts, a file or a labelled split."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from emoscope.cli.options import positive_int
from emoscope.core.checks import check_destination
from emoscope.core.errors import UserError
from emoscope.core.vocab import BACKENDS, LONG_TEXT_MODES, PRECISIONS, WINDOW_COMBINES

TRUST_PICKLE = ("--trust-pickle", "--trust_pickle")
TEXT_COLUMN = ("--text-column", "--text_column")
TRUST_PICKLE_HELP = "load pickled weights (.bin, .pth) too: unpickling can run code, so only from a trusted source"


def _add_scoring_options(p: argparse.ArgumentParser) -> None:
    """Where and how a run scores texts: the same flags for `predict` and `evaluate`."""
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
        type=positive_int,
        default=128,
        help="texts per batch (default: 128)",
    )
    group.add_argument(
        "--num-threads",
        "--num_threads",
        dest="num_threads",
        type=positive_int,
        help="CPU threads for torch and onnxruntime (default: torch's, one per core); on a shared node, the cores "
        "the job was given",
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        help="CPU batches scored at once, one thread each (default: one per thread; 1: one batch at a time over "
        "all threads)",
    )


def _predictor(args: argparse.Namespace, device: str | None = None, backend: str = "torch"):
    """The run (or ensemble) as `--device`, `--precision`, `--num_threads` and `--workers` ask."""
    from emoscope.inference.predictor import Predictor

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


def _evaluate(args: argparse.Namespace) -> None:
    """Writes into its own folder: the run's eval/ (which `emoscope ensemble` tunes on) stays as training left it."""
    from emoscope.core.runfolder import EVALUATIONS, THRESHOLDS
    from emoscope.data.splits import load_data
    from emoscope.evaluate.split import score_split

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
        predictor.check_labels(taxonomy.labels)
        examples = load_examples(args.file, taxonomy, skip_bad_rows=args.skip_bad_rows, text_column=args.text_column)
    else:
        data = load_data(config)
        predictor.check_labels(data.taxonomy.labels)
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


def _predict(args: argparse.Namespace) -> None:
    """Texts on the command line, a file streamed to an output (`--shard`: one shard of it; under torchrun each
    rank scores its shard and rank 0 merges), or `--merge` of finished shards."""
    from emoscope.inference import corpus

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


def add_evaluate(sub) -> None:
    """emoscope evaluate RUN [--split | --file]"""
    p = sub.add_parser("evaluate", help="score a run folder on a split or a labelled file")
    p.add_argument("run_dir")
    p.add_argument("--split", choices=("dev", "test"), default="test")
    p.add_argument("--file", help="a labelled file in any supported layout")
    p.add_argument("--data-dir", "--data_dir", dest="data_dir")
    p.add_argument("--skip-bad-rows", "--skip_bad_rows", dest="skip_bad_rows", action="store_true")
    p.add_argument(
        *TEXT_COLUMN,
        dest="text_column",
        default="text",
        help="the column (CSV, Parquet) or field (JSONL) of --file that holds the text (default: 'text')",
    )
    p.add_argument(
        "--out",
        help="the folder to write (default: RUN_DIR/evaluations/<split or file stem>); the "
        "run's own eval/ is never touched unless named here",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing --out folder")
    p.add_argument(*TRUST_PICKLE, dest="trust_pickle", action="store_true", help=TRUST_PICKLE_HELP)
    _add_scoring_options(p)
    p.set_defaults(func=_evaluate)


def add_predict(sub) -> None:
    """emoscope predict RUN texts... | --file IN --out OUT | --merge"""
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
        *TEXT_COLUMN,
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
        type=positive_int,
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
    p.add_argument("--top-k", "--top_k", dest="top_k", type=positive_int, default=5, help="emotions shown (default 5)")
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

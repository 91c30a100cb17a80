"""`emoscope export`: a run as a transformers folder or an ONNX folder."""

from __future__ import annotations

import argparse

from emoscope.core.errors import UserError
from emoscope.core.vocab import EXPORT_FORMATS, QUANTIZATIONS


def _export(args: argparse.Namespace) -> None:
    if args.format == "onnx":
        from emoscope.export.onnx import INT8_MAX_F1_DROP, export_onnx

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


def add_export(sub) -> None:
    """emoscope export RUN [--format onnx [--quantize int8]]"""
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

"""Load a run folder and predict: texts, files, or from Python.

    >>> from emoscope.predict import Predictor
    >>> Predictor("runs/cpu-default").predict(["thank you so much!"], top_k=3)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

import emoscope
from emoscope.config import read_config
from emoscope.data.batching import encode_texts
from emoscope.errors import DataError, UserError
from emoscope.models import build_classifier
from emoscope.models.backbone import load_pickled_weights, refuse_pickle
from emoscope.models.inference import AMP_DTYPES, predict_probs, resolve_precision
from emoscope.runfolder import ENSEMBLE_INFO, THRESHOLDS

INPUT_FORMATS = (".txt", ".csv", ".tsv", ".jsonl")
OUTPUT_FORMATS = (".jsonl", ".csv")
PICKLED_WEIGHTS = ("model.bin", "model.pth", "model.pt", "pytorch_model.bin")


def check_run_dir(run_dir: Path, trust_pickle: bool = False) -> dict:
    """The run's `run.json`, after checking the folder is a complete run this version can read."""
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise UserError(f"{run_dir} is not an emoscope run folder (no run.json)")
    try:
        info = json.loads(info_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{info_path} is not valid JSON: {exc.msg}") from exc
    if info.get("format") != emoscope.RUN_FORMAT_VERSION:
        raise UserError(f"{run_dir} was written in run-folder format {info.get('format')}; this emoscope "
                        f"{emoscope.__version__} reads format {emoscope.RUN_FORMAT_VERSION}")
    for name in ("config.yaml", "labels.json", "backbone_config.json", "tokenizer"):
        if not (run_dir / name).exists():
            raise UserError(f"run folder {run_dir} is incomplete: {name} is missing")
    weights_file(run_dir, trust_pickle)
    return info


def weights_file(run_dir: Path, trust_pickle: bool = False) -> Path:
    """`model.safetensors`; pickled weights (model.bin, .pth...) only when the user trusts them."""
    if (run_dir / "model.safetensors").is_file():
        return run_dir / "model.safetensors"
    for name in PICKLED_WEIGHTS:
        if (run_dir / name).is_file():
            refuse_pickle(run_dir / name, trust_pickle)
            return run_dir / name
    raise UserError(f"run folder {run_dir} is incomplete: model.safetensors is missing")


def read_thresholds(folder: Path, labels: list[str]) -> np.ndarray:
    """The folder's dev-chosen threshold per label, 0.5 where it has none."""
    path = folder / THRESHOLDS
    stored = json.loads(path.read_text())["thresholds"] if path.is_file() else {}
    return np.array([stored.get(label, 0.5) for label in labels], dtype=np.float32)


class Predictor:
    """A trained run, ready to score texts on the CPU or a GPU. `Predictor(ensemble_folder)` gives an
    `EnsemblePredictor`, which scores texts the same way."""

    def __new__(cls, run_dir: str | Path, *args, **kwargs):
        if cls is Predictor and (Path(run_dir) / ENSEMBLE_INFO).is_file():
            from emoscope.ensemble_predictor import EnsemblePredictor

            return super().__new__(EnsemblePredictor)
        return super().__new__(cls)

    def __init__(self, run_dir: str | Path, device: str | None = None, precision: str = "auto",
                 trust_pickle: bool = False):
        self.run_dir = Path(run_dir)
        check_run_dir(self.run_dir, trust_pickle)
        self.config = read_config(self.run_dir / "config.yaml")
        self.labels = json.loads((self.run_dir / "labels.json").read_text())["labels"]
        self.thresholds = read_thresholds(self.run_dir, self.labels)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(self.run_dir / "tokenizer")
        backbone_config = AutoConfig.from_pretrained(self.run_dir / "backbone_config.json")
        self.model = build_classifier(backbone_config, self.config.head, len(self.labels),
                                      head_dropout=self.config.head_dropout, pooling=self.config.pooling)
        weights = weights_file(self.run_dir, trust_pickle)
        self.model.load_state_dict(load_file(str(weights)) if weights.suffix == ".safetensors"
                                   else load_pickled_weights(weights, trust_pickle))
        self.model.to(self.device).eval()
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.precision = resolve_precision(precision, self.device)
        if self.precision in AMP_DTYPES:  # inference only: cast once rather than autocast every layer call
            self.model.to(AMP_DTYPES[self.precision])

    def predict_proba(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"text {i + 1} is empty: nothing to predict")
        ids = encode_texts(self.tokenizer, texts, self.config.max_len, cache=False)
        return predict_probs(self.model, ids, self.pad_id, batch_size, self.device, self.precision)

    def predict(self, texts: list[str], top_k: int = 5, batch_size: int = 128) -> list[dict]:
        """Per text: the top-k emotions with probabilities, and the emotions above their dev thresholds."""
        probs = self.predict_proba(texts, batch_size)
        out = []
        for text, row in zip(texts, probs, strict=True):
            order = np.argsort(-row)[:top_k]
            out.append({"text": text,
                        "top": [(self.labels[j], float(row[j])) for j in order],
                        "predicted": [self.labels[j] for j in np.flatnonzero(row >= self.thresholds)],
                        "probs": {label: float(p) for label, p in zip(self.labels, row, strict=True)}})
        return out


def read_texts(path: Path) -> list[str]:
    """Texts from .txt (one a line), .csv/.tsv (a `text` column, else the first), or .jsonl (`text`)."""
    if not path.is_file():
        raise UserError(f"input file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise UserError(f"{path}: unsupported input format '{suffix}'; use one of {', '.join(INPUT_FORMATS)}")
    try:
        content = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(path, line, "invalid UTF-8") from exc
    numbered: list[tuple[int, str]] = []  # (line, text): a problem is reported at its line in the file
    if suffix == ".txt":
        numbered = [(number, line) for number, line in enumerate(content.splitlines(), start=1) if line.strip()]
    elif suffix == ".jsonl":
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, number, f"not valid JSON ({exc.msg})") from exc
            except (ValueError, RecursionError) as exc:  # a number over 4300 digits, or nesting too deep
                raise DataError(path, number, f"not valid JSON ({exc})") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(path, number, "expected an object with a string field 'text'")
            numbered.append((number, record["text"]))
    else:
        reader = csv.reader(content.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        rows, end = [], 0
        try:
            for row in reader:
                rows.append((end + 1, row))
                end = reader.line_num
        except csv.Error as exc:
            raise DataError(path, reader.line_num, f"malformed {suffix[1:].upper()}: {exc}") from None
        has_header = bool(rows) and "text" in rows[0][1]
        column = rows[0][1].index("text") if has_header else 0
        for number, row in rows[1:] if has_header else rows:
            if len(row) <= column:
                raise DataError(path, number, f"expected at least {column + 1} columns, found {len(row)}")
            numbered.append((number, row[column]))
    if not numbered:
        raise DataError(path, None, "no texts found")
    for number, text in numbered:
        if not text.strip():
            raise DataError(path, number, "empty text")
    return [text for _, text in numbered]


def predict_file(predictor: Predictor, in_path: Path, out_path: Path, top_k: int = 5) -> int:
    """Batch mode: writes JSONL or CSV (by the output's extension); returns how many texts were scored."""
    if out_path.suffix.lower() not in OUTPUT_FORMATS:
        raise UserError(f"{out_path}: output must end in .jsonl or .csv")
    texts = read_texts(in_path)
    results = predictor.predict(texts, top_k=top_k)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    if out_path.suffix.lower() == ".csv":
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "predicted", *predictor.labels])
            for r in results:
                writer.writerow([r["text"], ";".join(r["predicted"]),
                                 *(f"{r['probs'][label]:.6f}" for label in predictor.labels)])
    else:
        with open(tmp, "w", encoding="utf-8") as handle:
            for r in results:
                handle.write(json.dumps({"text": r["text"], "predicted": r["predicted"],
                                         "top": [{"label": k, "prob": p} for k, p in r["top"]],
                                         "probs": r["probs"]}, ensure_ascii=False) + "\n")
    tmp.replace(out_path)
    return len(results)


def export_hf(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """A `transformers` folder for a linear-head run: `pipeline("text-classification", model=out,
    top_k=None, trust_remote_code=True)` gives the same probabilities as `Predictor`."""
    import shutil
    from importlib import resources

    from emoscope.train.checkpoint import save_weights

    run_dir = Path(run_dir)
    if (run_dir / ENSEMBLE_INFO).is_file():
        raise UserError(f"{run_dir} is an ensemble: ensembles do not export to transformers, only single runs do")
    check_run_dir(run_dir)
    config = read_config(run_dir / "config.yaml")
    if config.head != "linear":
        raise UserError(f"only linear-head runs export to transformers; {run_dir} has head '{config.head}'")
    out = Path(out_dir) if out_dir else run_dir / "hf"
    out.mkdir(parents=True, exist_ok=True)
    labels = json.loads((run_dir / "labels.json").read_text())["labels"]
    backbone = json.loads((run_dir / "backbone_config.json").read_text())
    hf_config = {
        "architectures": ["EmoscopeForSequenceClassification"], "model_type": "emoscope",
        "auto_map": {"AutoConfig": "modeling_emoscope.EmoscopeConfig",
                     "AutoModelForSequenceClassification": "modeling_emoscope.EmoscopeForSequenceClassification"},
        "backbone": backbone, "pooling": config.pooling, "problem_type": "multi_label_classification",
        "id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)},
    }
    (out / "config.json").write_text(json.dumps(hf_config, indent=1))
    (out / "modeling_emoscope.py").write_text(resources.files("emoscope").joinpath("hf_modeling.py").read_text())
    state = load_file(str(run_dir / "model.safetensors"))
    renamed = {("classifier." + k[len("head.classifier."):]) if k.startswith("head.classifier.") else k: v
               for k, v in state.items()}
    save_weights(renamed, out / "model.safetensors", {"format": "pt"})
    for item in (run_dir / "tokenizer").iterdir():
        shutil.copy(item, out / item.name)
    return out

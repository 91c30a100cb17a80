"""Teachers for distillation: their probabilities on the train texts, computed once and cached with provenance.

A teacher is a run folder, an `emoscope ensemble` folder, or an `emoscope crossfit` folder. A crossfit folder's
runs never saw the texts they label: each trained without one fold of train and labelled that fold, so every
train text has an out-of-fold soft label (GoEmotions' labels are noisy; a teacher that memorised a text would
only repeat its label). Several teachers are averaged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emoscope.core import runfolder
from emoscope.core.errors import UserError
from emoscope.data import Example
from emoscope.data.folds import assign_folds
from emoscope.evaluate.ensemble import training_wall_seconds_behind
from emoscope.evaluate.metrics import read_predictions
from emoscope.inference.predictor import Predictor

OOF_SPLIT = "train_oof"  # a crossfit folder's eval/train_oof_predictions.jsonl


def teacher_kind(folder: Path) -> str:
    """ "crossfit", "ensemble" or "run", from the file each kind of folder is named by."""
    if (folder / runfolder.CROSSFIT_INFO).is_file():
        return "crossfit"
    if (folder / runfolder.ENSEMBLE_INFO).is_file():
        return "ensemble"
    if (folder / runfolder.RUN_INFO).is_file():
        return "run"
    raise UserError(f"teacher {folder} is not a run, ensemble or crossfit folder")


def _fingerprint(folder: Path, kind: str) -> str:
    """What the teacher's probabilities depend on: its weights, its members, or its out-of-fold labels."""
    if kind == "crossfit":
        return runfolder.sha256_file(runfolder.eval_file(folder, runfolder.split_predictions(OOF_SPLIT)))
    if kind == "ensemble":
        return runfolder.sha256_file(folder / runfolder.ENSEMBLE_INFO)
    return runfolder.sha256_file(folder / runfolder.WEIGHTS)


def _digest(values: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(values).encode()).hexdigest()


def _predictor(folder: Path, labels: Sequence[str]):
    """The teacher, which must predict the student's labels in their order."""
    predictor = Predictor(folder)
    predictor.check_labels(labels, of="the student's data")
    return predictor


def out_of_fold_probs(
    folder: Path, train: Sequence[Example], labels: Sequence[str], origins: Sequence[Example] | None = None
) -> np.ndarray:
    """A crossfit folder's out-of-fold probabilities, in the order of `train` (matched by id). A copy of a
    train text (`origins[i]` is not `train[i]`) is scored by the fold's teacher that never saw its original."""
    origins = train if origins is None else origins
    path = runfolder.eval_file(folder, runfolder.split_predictions(OOF_SPLIT))
    if not path.is_file():
        raise UserError(f"crossfit folder {folder} is incomplete: {path.name} is missing")
    oof = read_predictions(path, labels)
    row_of = {i: n for n, i in enumerate(oof.ids)}
    texts = list(dict.fromkeys(e.id for e in origins))  # each train text once, whatever its copies
    missing = [i for i in texts if i not in row_of]
    if missing:
        raise UserError(
            f"crossfit folder {folder} has no out-of-fold label for {len(missing)} of the "
            f"{len(texts)} train texts (first: {missing[0]}): distil on the data it was fitted on"
        )
    probs = oof.probs[[row_of[e.id] for e in origins]].astype(np.float32)
    copies = [n for n, (e, o) in enumerate(zip(train, origins, strict=True)) if e.id != o.id]
    if copies:
        info = json.loads((folder / runfolder.CROSSFIT_INFO).read_text())
        fold_of = dict(zip(oof.ids, assign_folds(oof.ids, info["folds"], info["seed"]), strict=True))
        copy_fold = np.array([fold_of[origins[n].id] for n in copies])
        for k, run in enumerate(info["runs"]):
            rows = [n for n, fold in zip(copies, copy_fold, strict=True) if fold == k]
            if rows:
                probs[rows] = _predictor(folder / run, labels).predict_proba([train[n].text for n in rows])
    return probs


def teacher_probs(
    folder: Path, kind: str, train: Sequence[Example], labels: Sequence[str], origins: Sequence[Example] | None = None
) -> np.ndarray:
    """One teacher's probabilities [len(train), labels] for the train texts (`kind` from `teacher_kind`)."""
    if kind == "crossfit":
        return out_of_fold_probs(folder, train, labels, origins)
    return _predictor(folder, labels).predict_proba([e.text for e in train]).astype(np.float32)


class Teachers:
    """The mean of the teachers' probabilities on train, cached in the student's run folder (`teachers/`):
    computed on the first run, read back on `--resume` while the teachers and the train texts are the same."""

    def __init__(self, folders: Sequence[str | Path]):
        if not folders:
            raise UserError("distillation needs at least one --teacher folder")
        self.folders = [Path(f) for f in folders]
        self.kinds = [teacher_kind(folder) for folder in self.folders]  # a folder that is no teacher stops here

    def provenance(self, train: Sequence[Example], labels: Sequence[str]) -> dict:
        teachers = [
            {"path": str(folder), "kind": kind, "sha256": _fingerprint(folder, kind)}
            for folder, kind in zip(self.folders, self.kinds, strict=True)
        ]
        return {
            "teachers": teachers,
            "labels": list(labels),
            "train_examples": len(train),
            "train_ids_sha256": _digest([e.id for e in train]),
            "train_texts_sha256": _digest([e.text for e in train]),
        }

    def probabilities(
        self, run_dir: Path, train: list[Example], labels: tuple[str, ...], origins: list[Example] | None = None
    ) -> np.ndarray:
        cache = Path(run_dir) / runfolder.TEACHER_CACHE
        probs_path, info_path = cache / runfolder.TEACHER_PROBS, cache / runfolder.TEACHER_INFO
        provenance = self.provenance(train, labels)
        if info_path.is_file() and probs_path.is_file():
            if json.loads(info_path.read_text()) == provenance:
                print(f"teachers: probabilities on train read from {probs_path}", flush=True)
                return np.load(probs_path, allow_pickle=False)
            print(f"teachers: {info_path} is for other teachers or texts; computing again", flush=True)
        probs = np.mean(
            [teacher_probs(f, kind, train, labels, origins) for f, kind in zip(self.folders, self.kinds, strict=True)],
            axis=0,
        ).astype(np.float32)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = probs_path.with_name(f".{probs_path.name}.tmp{os.getpid()}.npy")
        np.save(tmp, probs, allow_pickle=False)
        os.replace(tmp, probs_path)
        info_path.write_text(json.dumps(provenance, indent=1) + "\n")
        print(
            f"teachers: probabilities of {len(self.folders)} teacher(s) on {len(train)} train texts cached in {cache}",
            flush=True,
        )
        return probs

    def wall_seconds(self) -> float | None:
        """The teachers' training wall time, for the student's run.json (teachers trained side by side, in one
        folder or in several, counted once; None when it is unknown)."""
        return training_wall_seconds_behind(self.folders)

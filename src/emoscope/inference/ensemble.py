"""An `emoscope ensemble` folder as a model: the folder holds no weights of its own, only which runs it
averages (`ensemble.json`), the baseline and its share, and the thresholds chosen on dev.

`Predictor(ensemble_folder)` returns an `EnsemblePredictor`; `predict_proba` repeats what the ensemble's
evaluation did with saved probabilities: the mean of the runs', then ``(1 - w) * mean + w * baseline``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emoscope.core.errors import UserError
from emoscope.core.runfolder import ENSEMBLE_INFO, read_labels, read_thresholds
from emoscope.evaluate.baseline import BaselineModel
from emoscope.evaluate.ensemble import label_order, member_folder
from emoscope.inference.predictor import Predictor
from emoscope.models.inference import check_workers


class EnsemblePredictor(Predictor):
    """The runs of an ensemble folder, loaded as `Predictor`s (same device, precision, backend and workers), and
    its baseline."""

    @classmethod
    def serves(cls, folder: Path, backend: str) -> bool:
        return (folder / ENSEMBLE_INFO).is_file()

    def __init__(
        self,
        run_dir: str | Path,
        device: str | None = None,
        precision: str | None = None,
        trust_pickle: bool = False,
        backend: str = "torch",
        workers: int | None = None,
    ):
        self.run_dir = Path(run_dir)
        if backend == "onnx-int8":
            raise UserError(
                f"{self.run_dir} is an ensemble: its thresholds were chosen on its runs' full-precision "
                "probabilities, so it runs on the torch or onnx backend, not onnx-int8"
            )
        self.backend = backend
        self.workers = check_workers(workers)
        info = json.loads((self.run_dir / ENSEMBLE_INFO).read_text())
        self.labels = read_labels(self.run_dir)["labels"]
        self.thresholds = read_thresholds(self.run_dir, self.labels)
        self.members = [
            Predictor(member_folder(self.run_dir, run), device, precision, trust_pickle, backend, workers)
            for run in info["runs"]
        ]
        self.device = self.members[0].device
        # The runs were trained on the same data and taxonomy: the first one says where those came from.
        self.config = self.members[0].config
        self.member_columns = [label_order(m.run_dir, m.labels, self.labels) for m in self.members]
        self.baseline_weight = float(info["baseline_weight"])
        self.baseline = None  # at weight 0 the baseline changes nothing, so it need not be loadable
        if info["baseline"] and self.baseline_weight > 0:
            folder = member_folder(self.run_dir, info["baseline"])
            self.baseline = BaselineModel(folder)
            self.baseline_columns = label_order(folder, self.baseline.labels, self.labels)

    def predict_proba(self, texts: list[str], batch_size: int = 128, **long_text) -> np.ndarray:
        probs = np.mean(
            [
                m.predict_proba(texts, batch_size, **long_text)[:, columns].astype(np.float64)
                for m, columns in zip(self.members, self.member_columns, strict=True)
            ],
            axis=0,
        )
        if self.baseline is None:
            return probs
        lexical = self.baseline.predict_proba(texts)[:, self.baseline_columns]
        return (1 - self.baseline_weight) * probs + self.baseline_weight * lexical

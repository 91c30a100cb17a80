"""The training loop's hook into the tracker (`emoscope.train.TrainingObserver`): rank 0 only.

`setup` fixes the probe set (or reuses the run's, so captures of a resumed run or of a checkpoint stay
comparable) and stores the training labels' co-occurrence; `on_epoch` writes one capture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from emoscope.analysis.probe import read_probe, select_probe, write_cooccurrence, write_probe
from emoscope.analysis.tracker import capture_epoch, text_batches
from emoscope.core.runfolder import cooccurrence_path, probe_path


class TrackerObserver:
    def __init__(
        self,
        max_len: int,
        probe_size: int = 2000,
        pooling: str = "mean",
        seed: int = 0,
        batch_size: int = 64,
        points: Sequence[str] | None = None,
    ):
        """`max_len`: the run's, so the probe texts are tokenised as in training."""
        self.probe_size, self.pooling, self.seed, self.max_len = probe_size, pooling, seed, max_len
        self.batch_size, self.points = batch_size, points
        self.run_dir: Path | None = None
        self._batches: list = []

    def setup(self, run_dir: Path, model: nn.Module, tokenizer, data) -> None:
        """`data` has `train` and `dev` lists of examples (`text`, `labels`, `id`) and `taxonomy.labels`.

        `probe_size` applies only when the run has no probe set yet.
        """
        self.run_dir = Path(run_dir)
        probe = probe_path(self.run_dir)
        if probe.is_file():
            _, texts, _ = read_probe(probe)
        else:
            dev = data.dev
            chosen = [
                dev[i]
                for i in select_probe([e.labels for e in dev], self.probe_size, self.seed, len(data.taxonomy.labels))
            ]
            texts = [e.text for e in chosen]
            write_probe(probe, [e.id for e in chosen], texts, [e.labels for e in chosen])
        if data.train and not cooccurrence_path(self.run_dir).is_file():
            write_cooccurrence(self.run_dir, [e.labels for e in data.train], len(data.taxonomy.labels))
        self._batches = text_batches(tokenizer, texts, self.max_len, self.batch_size)

    def on_epoch(self, model: nn.Module, epoch: int) -> None:
        capture_epoch(model, self._batches, self.run_dir, epoch, self.points, self.pooling)

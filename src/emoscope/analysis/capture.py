"""On demand (`emoscope analyze --capture`): the run's probe set through saved weights, the best model's or a
checkpoint's, filed as the epoch those weights record."""

from __future__ import annotations

from pathlib import Path

from emoscope.analysis.observer import TrackerObserver
from emoscope.core.errors import UserError
from emoscope.core.runfolder import WEIGHTS
from emoscope.data.splits import load_data
from emoscope.inference.predictor import Predictor
from emoscope.models.weights import read_weights


def capture_weights(
    run_dir: Path,
    weights: str | Path | None = None,
    epoch: int | None = None,
    probe_size: int = 2000,
    pooling: str | None = None,
    data_dir: str | None = None,
) -> Path:
    """Capture through `weights` (a .safetensors file or a checkpoint folder; default: the run's best) and
    return the weights file used. `pooling` defaults to the run's `capture_pooling`, so the new capture
    can be compared with the ones training made."""
    run_dir = Path(run_dir)
    predictor = Predictor(run_dir, precision="fp32")
    path = Path(weights) if weights else run_dir / WEIGHTS
    path = path / WEIGHTS if path.is_dir() else path
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    state, metadata = read_weights(path)
    epoch = epoch if epoch is not None else metadata.get("epoch")
    if epoch is None:
        raise UserError(f"{path} does not record its epoch: pass --capture-epoch K to name the capture")
    predictor.model.load_state_dict(state)
    config = predictor.config
    if data_dir:
        config.data_dir = data_dir
    observer = TrackerObserver(max_len=config.max_len, probe_size=probe_size, pooling=pooling or config.capture_pooling)
    observer.setup(run_dir, predictor.model, predictor.tokenizer, load_data(config))
    observer.on_epoch(predictor.model, int(epoch))
    print(f"captured {path} as epoch {epoch}")
    return path

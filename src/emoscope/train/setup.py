"""Everything the loop needs before its first step, in the order it happens: processes and devices, the data,
the model, the run folder, the train texts as token ids with their targets, the optimizer and its schedule, and
where a resumed run left off.

Every rank walks the same global batch plan and takes its share of each batch; the loss is normalised by the
global batch size, so N ranks compute the same update as one process.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import random
import resource
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from emoscope.core import runfolder
from emoscope.core.config import TrainConfig
from emoscope.core.errors import UserError
from emoscope.data import Example
from emoscope.data.augment import word_dropped_copies
from emoscope.data.batching import batch_plan, encode_texts
from emoscope.data.splits import SplitData
from emoscope.evaluate.ensemble import runs_behind
from emoscope.evaluate.metrics import as_indicator_matrix
from emoscope.models import build_classifier, encoder_layers
from emoscope.models.backbone import load_tokenizer, max_positions, resolve_backbone, with_emoji_names
from emoscope.models.dropout import use_cpu_dropout
from emoscope.models.frozen import FrozenBottom
from emoscope.models.inference import resolve_precision
from emoscope.models.weights import average_weights
from emoscope.train.checkpoint import load_latest_checkpoint
from emoscope.train.losses import Loss, positive_weights


class SoftTargets(Protocol):
    """Teachers' probabilities for the train texts (distillation), e.g. `emoscope.recipes.distill.Teachers`.

    Called once the run folder exists, first on rank 0 (which may compute them and cache them there), then on
    the other ranks (which read that cache); training never imports the teachers' code."""

    def probabilities(
        self, run_dir: Path, train: list[Example], labels: tuple[str, ...], origins: list[Example]
    ) -> np.ndarray:
        """One row per text of `train`; `origins[i]` is the train text that `train[i]` is a copy of (itself
        when it is no copy: `--augment_copies`)."""


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    main_work: dist.ProcessGroup | None = None  # the gloo group in which the other ranks wait for rank 0's lone work

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wait_for_main(self) -> None:
        """Where rank 0 works alone (teachers' probabilities, checkpoints, the observer's captures), the others wait
        here rather than at the next collective, which would time out after EMOSCOPE_DIST_TIMEOUT (meant to
        catch a dead rank, not a slow filesystem) and let torchrun's --max-restarts loop."""
        if self.world > 1:
            dist.barrier(group=self.main_work)


@dataclass
class Progress:
    """Where training is, saved in every checkpoint's `state.json`. The epoch's running loss is part of it: a run
    resumed mid-epoch must log the same train_loss."""

    epoch: int = 0
    batch: int = 0  # batches of the epoch done
    step: int = 0
    best_f1: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
    metrics_bytes: int = 0  # the length of metrics.jsonl at the checkpoint
    wall_seconds: float = 0.0  # before this process started
    stopped: bool = False
    epoch_loss: float = 0.0
    epoch_examples: int = 0


@dataclass
class TrainData:
    """The train texts (with their word-dropped copies) and dev as token ids, with the targets the loss needs."""

    data: SplitData
    train_ids: list[np.ndarray]
    dev_ids: list[np.ndarray]
    y_train: np.ndarray  # [train texts, labels] float32 0/1
    y_dev: np.ndarray
    pad_id: int
    soft: np.ndarray | None  # the teachers' probabilities per train row
    soft_share: np.ndarray  # each row's share of the soft-label loss (the copies may have their own)

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.train_ids]


@dataclass
class Optimisation:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    ema: torch.optim.swa_utils.AveragedModel | None  # what is evaluated and saved when set; the raw weights train


# ---------------------------------------------------------------- processes and devices


def setup_distributed() -> tuple[Dist, torch.device]:
    if "RANK" not in os.environ:
        return Dist(), torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local_rank)
        device, backend = torch.device("cuda", d.local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    timeout = datetime.timedelta(seconds=int(os.environ.get("EMOSCOPE_DIST_TIMEOUT", "600")))
    dist.init_process_group(backend, timeout=timeout)
    # gloo on every device: it waits on the CPU, so a long wait holds no GPU stream and no NCCL watchdog.
    work_timeout = datetime.timedelta(seconds=int(os.environ.get("EMOSCOPE_MAIN_WORK_TIMEOUT", str(6 * 3600))))
    d.main_work = dist.new_group(backend="gloo", timeout=work_timeout)
    return d, device


def set_up_device(config: TrainConfig, d: Dist, device: torch.device) -> str:
    """Refuse what this device and these processes cannot do, set threads and determinism; the precision
    resolved on the device (config.yaml keeps what was asked for)."""
    precision = resolve_precision(config.precision, device)
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA GPU; use bf16 (fast on recent CPUs) or fp32 on CPU")
    if config.batch_size % d.world:
        raise UserError(f"--batch_size {config.batch_size} must be divisible by the {d.world} processes")
    if config.train_streams > 1 and (device.type != "cpu" or d.world > 1):
        raise UserError("--train_streams above 1 is for one process on the CPU; on a GPU or with DDP use 1")
    if config.cache_frozen_layers and d.world > 1:
        raise UserError("--cache_frozen_layers is for one process; with DDP leave it off")
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS repeats only with a fixed workspace
        torch.use_deterministic_algorithms(True)
    return precision


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- the model and the run folder


def build_model(config: TrainConfig, data: SplitData) -> tuple[nn.Module, object, list[Path]]:
    """The classifier (from the backbone, or `--init_from` runs' averaged weights) with its frozen layers and CPU
    dropout, its tokenizer, and the weight files it started from."""
    backbone_source = resolve_backbone(config.backbone)
    tokenizer = load_tokenizer(backbone_source)
    if config.emoji_names:
        tokenizer = with_emoji_names(tokenizer, data.train_emoji)
    model = build_classifier(
        backbone_source,
        config.head,
        len(data.taxonomy.labels),
        head_dropout=config.head_dropout,
        pooling=config.pooling,
        backbone_dropout=config.backbone_dropout,
        trust_pickle=config.trust_pickle,
    )
    start_files = start_from(model, config.init_from) if config.init_from else []
    limit = max_positions(model.backbone.config)
    if config.max_len > limit:
        raise UserError(f"--max_len {config.max_len} is beyond the backbone's limit of {limit} tokens")
    model.freeze(config.train_last_layers, config.freeze_embeddings)
    use_cpu_dropout(model)  # dropout masks drawn 3x faster on CPU (models/dropout.py); elsewhere PyTorch's own
    return model, tokenizer, start_files


def start_from(model: nn.Module, folders: list[str]) -> list[Path]:
    """`--init_from`: the runs' averaged weights replace the pretrained backbone and the new head (a student
    can start where its teachers, trained on parts of train, ended)."""
    files = [run / runfolder.WEIGHTS for folder in folders for run in runs_behind(Path(folder))]
    for path in files:
        if not path.is_file():
            raise UserError(f"{path} not found: --init_from needs finished runs (safetensors weights)")
    state, own = average_weights(files), model.state_dict()
    misfit = sorted(own.keys() ^ state.keys()) or [k for k in own if own[k].shape != state[k].shape]
    if misfit:
        raise UserError(
            f"--init_from {files[0].parent}: its weights do not fit this model (another backbone, head or label "
            f"set; first difference: {misfit[0]})"
        )
    model.load_state_dict(state)
    print(f"model: starts from the average of the weights of {len(files)} run(s): {', '.join(map(str, folders))}")
    return files


def shared_run_dir(config: TrainConfig, d: Dist, model: nn.Module) -> Path:
    """The run folder, prepared by rank 0; every rank must know it (it may carry a timestamp)."""
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    run_dir = prepare_run_dir(config, model_bytes) if d.main else Path(config.run_dir or "")
    if d.world > 1:
        holder = [str(run_dir)]
        dist.broadcast_object_list(holder, src=0)
        run_dir = Path(holder[0])
    return run_dir


def prepare_run_dir(config: TrainConfig, model_bytes: int) -> Path:
    """Fail before training, not after an epoch: existing folder, unwritable folder, or too little disk."""
    run_dir = Path(config.run_dir or f"runs/{config.preset}-{time.strftime('%Y%m%d-%H%M%S')}")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is a file, not a folder")
    if run_dir.exists() and any(run_dir.iterdir()) and not config.resume:
        if not config.overwrite:
            raise UserError(f"run folder {run_dir} already exists; pass --overwrite to replace it or --resume")
        shutil.rmtree(run_dir)
    # A checkpoint is the weights plus AdamW's two moments; keep + 1 of them exist while the next one is
    # written, beside the best weights. Measured where the folder will be, before anything is created there.
    needed = model_bytes * (3 * (config.keep_checkpoints + 1) + 1) + (64 << 20)
    free = shutil.disk_usage(next(p for p in (run_dir, *run_dir.parents) if p.exists())).free
    if free < needed:
        raise UserError(
            f"not enough disk space in {run_dir}: {free >> 20} MiB free, about {needed >> 20} MiB "
            "needed for checkpoints and weights"
        )
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"run folder {run_dir} is not writable: {exc.strerror or exc}") from exc
    return run_dir


def write_run_files(
    run_dir: Path,
    config: TrainConfig,
    data: SplitData,
    tokenizer,
    model: nn.Module,
    d: Dist,
    precision: str,
    start_files: list[Path],
    started: float,
) -> None:
    """Before the first step: what a reader needs besides the weights, so a run stopped early still loads.
    `started` is the clock `wall_seconds` counts from (before the data is read), so `finished - started` and
    `wall_seconds` agree for a run that was not resumed."""
    tax = data.taxonomy
    runfolder.write_config(run_dir, config)
    runfolder.write_labels(run_dir, tax.name, tax.labels, tax.sentiment_of, tax.ekman_of)
    tokenizer.save_pretrained(run_dir / runfolder.TOKENIZER)
    model.backbone.config.to_json_file(run_dir / runfolder.BACKBONE_CONFIG)
    runfolder.write_run_info(
        run_dir,
        {
            "torch": torch.__version__,
            "transformers": _version("transformers"),
            "python": platform.python_version(),
            "hardware": hardware_description(),
            "world_size": d.world,
            "precision": precision,
            "started": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
            **(
                {"init_from": [{"weights": str(p), "sha256": runfolder.sha256_file(p)} for p in start_files]}
                if start_files
                else {}
            ),
        },
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def hardware_description() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- the data and the loss


def encode_data(
    config: TrainConfig,
    data: SplitData,
    tokenizer,
    d: Dist,
    run_dir: Path,
    soft_targets: SoftTargets | None,
) -> TrainData:
    """Train (with `--augment_copies` word-dropped copies) and dev as token ids and targets; the teachers'
    probabilities, rank 0 first: it may compute them and cache them in the run folder."""
    labels = data.taxonomy.labels
    copies, copied_from = word_dropped_copies(data.train, config.augment_copies, config.augment_word_drop, config.seed)
    train_examples = [*data.train, *copies]
    origins = [*data.train, *(data.train[i] for i in copied_from)]
    train_ids = encode_texts(tokenizer, [e.text for e in train_examples], config.max_len)
    dev_ids = encode_texts(tokenizer, [e.text for e in data.dev], config.max_len)
    y_train = as_indicator_matrix([e.labels for e in train_examples], "train", len(labels)).astype(np.float32)
    y_dev = as_indicator_matrix([e.labels for e in data.dev], "dev", len(labels))
    soft = None
    if soft_targets is not None:
        if d.main:
            soft = soft_targets.probabilities(run_dir, train_examples, labels, origins)
        d.wait_for_main()
        if not d.main:
            soft = soft_targets.probabilities(run_dir, train_examples, labels, origins)
    soft_share = np.full(len(train_examples), config.distill_weight, dtype=np.float32)
    if config.copies_distill_weight is not None:
        soft_share[len(data.train) :] = config.copies_distill_weight
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return TrainData(data, train_ids, dev_ids, y_train, y_dev, pad_id, soft, soft_share)


def loss_of(config: TrainConfig, train: TrainData, device: torch.device) -> Loss:
    pos_weight = positive_weights(train.y_train, config.pos_weight)
    membership = train.data.taxonomy.coarse_groups()[1] if config.aux_weight else None
    return Loss(
        config,
        pos_weight.to(device) if pos_weight is not None else None,
        torch.from_numpy(membership).to(device) if membership is not None else None,
    )


# ---------------------------------------------------------------- optimisation


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """AdamW groups: no decay on biases and norms; head at head_lr; layer-wise lr decay down the encoder."""
    layers = encoder_layers(model.backbone)
    depth = {id(p): i + 1 for i, layer in enumerate(layers) for p in layer.parameters()}
    n = len(layers)
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("head."):
            lr = config.head_lr or config.lr
        else:
            lr = config.lr * config.layer_lr_decay ** (n - depth.get(id(param), 0 if "embeddings" in name else n))
        decay = 0.0 if param.ndim < 2 else config.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    return [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]


def lr_lambda(config: TrainConfig, total_steps: int):
    warmup = int(config.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        if config.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    return factor


def optimisation(
    config: TrainConfig, model: nn.Module, device: torch.device, precision: str, lengths: list[int]
) -> Optimisation:
    """AdamW (fused: several times faster than the per-tensor kernel on CPU as well as on CUDA), the schedule
    over every step of every epoch, the fp16 gradient scaler, and the weights' moving average (`--ema_decay`)."""
    ema = (
        torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
        )
        if config.ema_decay
        else None
    )
    optimizer = torch.optim.AdamW(param_groups(model, config), fused=device.type in ("cpu", "cuda"))
    steps_per_epoch = math.ceil(len(batch_plan(lengths, config.batch_size, config.seed, 0)) / config.grad_accum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, steps_per_epoch * config.epochs))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return Optimisation(optimizer, scheduler, scaler, ema)


def frozen_bottom(
    config: TrainConfig, model: nn.Module, train: TrainData, device: torch.device, precision: str
) -> FrozenBottom | None:
    """`--cache_frozen_layers`: the model a step calls, over the frozen layers' outputs computed once. Reads no
    random numbers (eval mode), so a resumed run rebuilds the same cache and repeats bit for bit."""
    if not config.cache_frozen_layers:
        return None
    return FrozenBottom(
        model, config.train_last_layers, train.train_ids, train.pad_id, device, precision, config.eval_batch_size
    )


def parallel(config: TrainConfig, d: Dist, model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """The model as the ranks train it (DDP), and as a step calls it (compiled with `--compile`; dynamic: the
    length-grouped batches change shape every step, and one symbolic graph serves them all)."""
    ddp_model = DistributedDataParallel(model) if d.world > 1 else model
    return ddp_model, torch.compile(ddp_model, dynamic=True) if config.compile else ddp_model


# ---------------------------------------------------------------- resume


def start_or_resume(
    config: TrainConfig, d: Dist, run_dir: Path, model: nn.Module, opt: Optimisation
) -> tuple[Progress, Path]:
    """Where training starts, and the `metrics.jsonl` it logs to: with `--resume`, the latest checkpoint that
    verifies (weights, optimizer, schedule, scaler, average and random state), the log cut back to it."""
    metrics_path = run_dir / runfolder.METRICS_LOG
    resumed = load_latest_checkpoint(run_dir / runfolder.CHECKPOINTS) if config.resume else None
    if not resumed:
        if d.main:
            metrics_path.write_bytes(b"")
        return Progress(), metrics_path
    model_state, train_state, saved, ckpt = resumed
    progress = Progress(**{f.name: saved[f.name] for f in dataclasses.fields(Progress)})
    model.load_state_dict(model_state)
    opt.optimizer.load_state_dict(train_state["optimizer"])
    opt.scheduler.load_state_dict(train_state["scheduler"])
    opt.scaler.load_state_dict(train_state["scaler"])
    if opt.ema:
        opt.ema.load_state_dict(train_state["ema"])
    torch.set_rng_state(train_state["torch_rng"])
    if torch.cuda.is_available() and train_state.get("cuda_rng"):  # dropout on the GPU repeats too
        torch.cuda.set_rng_state_all(train_state["cuda_rng"])
    if d.main:
        with open(metrics_path, "r+b") as handle:  # drop lines logged after the checkpoint
            handle.truncate(progress.metrics_bytes)
        print(f"emoscope: resumed from {ckpt} (epoch {progress.epoch + 1}, step {progress.step})", flush=True)
    return progress, metrics_path

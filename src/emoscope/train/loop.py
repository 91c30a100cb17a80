"""The one training loop: DDP, mixed precision, accumulation, early stopping and resume, in plain sight.

It trains and keeps what training makes: the best weights (dev macro-F1), checkpoints and `metrics.jsonl`.
Thresholds, final scores, exports and reports come after it, in `emoscope.recipe`.

Launch with `emoscope train` (one process) or `torchrun --nproc_per_node=N -m emoscope train` (DDP: nccl on
CUDA, gloo on CPU). Every rank walks the same global batch plan and takes its share of each batch; the loss
is normalised by the global batch size, so N ranks compute the same update as one process.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import random
import resource
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from emoscope import runfolder
from emoscope.config import TrainConfig
from emoscope.data import Example
from emoscope.data.augment import word_dropped_copies
from emoscope.data.batching import batch_plan, collate, encode_texts
from emoscope.data.splits import SplitData, load_data
from emoscope.errors import UserError
from emoscope.evaluate import choose_thresholds, compute_metrics
from emoscope.evaluate.ensemble import runs_behind
from emoscope.evaluate.metrics import as_indicator_matrix
from emoscope.models import build_classifier, encoder_layers
from emoscope.models.backbone import load_tokenizer, max_positions, resolve_backbone, with_emoji_names
from emoscope.models.dropout import stream_generator, use_cpu_dropout
from emoscope.models.frozen import FrozenBottom
from emoscope.models.inference import autocast, predict_probs, resolve_precision
from emoscope.models.weights import average_weights, save_weights
from emoscope.train.checkpoint import load_latest_checkpoint, save_checkpoint


class TrainingObserver(Protocol):
    """Called on rank 0 only; e.g. the representation tracker. Must not change training."""

    def setup(self, run_dir: Path, model: nn.Module, tokenizer, data: SplitData) -> None: ...
    def on_epoch(self, model: nn.Module, epoch: int) -> None: ...


class SoftTargets(Protocol):
    """Teachers' probabilities for the train texts (distillation), e.g. `emoscope.distill.Teachers`.

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
class Trained:
    """What the loop hands to what comes after it (`emoscope.recipe`); `main` is False on ranks other than 0."""

    run_dir: Path
    data: SplitData
    device: torch.device
    precision: str  # the configured precision resolved on this device ("auto" -> bf16 or fp32...)
    wall_seconds: float
    main: bool


# ---------------------------------------------------------------- set-up


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def positive_weights(y: np.ndarray, mode: str) -> torch.Tensor | None:
    """BCE pos_weight from train label counts: rare emotions weigh more (capped to keep training stable)."""
    if mode == "none":
        return None
    pos = y.sum(0).clip(min=1)
    ratio = (len(y) - pos) / pos
    ratio = np.sqrt(ratio) if mode == "sqrt" else ratio
    return torch.tensor(ratio.clip(max=50.0), dtype=torch.float32)


def multilabel_loss(
    logits: torch.Tensor, targets: torch.Tensor, config: TrainConfig, pos_weight: torch.Tensor | None
) -> torch.Tensor:
    """Per-example BCE (mean over labels), with label smoothing towards 0.5 and optional focal weighting, or the
    asymmetric loss: positives as in BCE, negatives' probabilities shifted down by the margin and focused."""
    if config.label_smoothing:
        targets = targets * (1 - config.label_smoothing) + 0.5 * config.label_smoothing
    logits = logits.float()
    if config.asl_gamma_neg:
        positive = -F.logsigmoid(logits) * targets * (1.0 if pos_weight is None else pos_weight)
        shifted = (torch.sigmoid(logits) - config.asl_clip).clamp(min=0)
        negative = -torch.log1p(-shifted.clamp(max=1 - 1e-6)) * shifted**config.asl_gamma_neg * (1 - targets)
        return (positive + negative).mean(dim=1)
    loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight, reduction="none")
    if config.focal_gamma:
        p = torch.sigmoid(logits)
        p_true = p * targets + (1 - p) * (1 - targets)
        loss = loss * (1 - p_true) ** config.focal_gamma
    return loss.mean(dim=1)


def hierarchy_loss(logits: torch.Tensor, targets: torch.Tensor, membership: torch.Tensor) -> torch.Tensor:
    """Per-example BCE of the coarse groups (`membership` [labels, groups] 0/1): a group's logit is the
    log-sum-exp of its members' logits (a smooth maximum: the group is there when one of its emotions is),
    its target whether any member is a gold label. Trains the label hierarchy through the emotions' own
    logits, so the auxiliary heads add no parameters."""
    group_logits = torch.logsumexp(logits.float().unsqueeze(2) + torch.log(membership), dim=1)
    group_targets = (targets.unsqueeze(2) * membership).amax(dim=1)
    return F.binary_cross_entropy_with_logits(group_logits, group_targets, reduction="none").mean(dim=1)


def distillation_loss(logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-example BCE against the teachers' probabilities, both sides' logits divided by the temperature;
    times T^2 so that the gradient keeps its size as T grows (Hinton et al., 2015)."""
    target = torch.sigmoid(torch.logit(teacher_probs.float().clamp(1e-6, 1 - 1e-6)) / temperature)
    loss = F.binary_cross_entropy_with_logits(logits.float() / temperature, target, reduction="none")
    return loss.mean(dim=1) * temperature**2


def rdrop_loss(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-example symmetric KL divergence between two passes' per-emotion Bernoulli distributions, averaged
    over emotions and the two directions: for Bernoullis, KL(p||q) + KL(q||p) = (p - q)(logit p - logit q)."""
    first, second = first.float(), second.float()
    return 0.5 * ((torch.sigmoid(first) - torch.sigmoid(second)) * (first - second)).mean(dim=1)


# ---------------------------------------------------------------- evaluation


def evaluate_split(
    model: nn.Module, ids: list[np.ndarray], pad_id: int, d: Dist, device: torch.device, batch_size: int, precision: str
) -> np.ndarray:
    """Each rank scores every world-th text; all ranks receive all probabilities (same order as `ids`)."""
    mine = list(range(d.rank, len(ids), d.world))
    autocast_to = precision if precision != "fp32" else None
    probs = predict_probs(model, [ids[i] for i in mine], pad_id, batch_size, device, autocast_to)
    if d.world == 1:
        return probs
    gathered: list = [None] * d.world
    dist.all_gather_object(gathered, (mine, probs))
    full = np.zeros((len(ids), max(p.shape[1] for _, p in gathered if len(p))), dtype=np.float32)
    for rows, part in gathered:
        if len(rows):
            full[rows] = part
    return full


# ---------------------------------------------------------------- the loop


def train(
    config: TrainConfig, observer: TrainingObserver | None = None, soft_targets: SoftTargets | None = None
) -> Trained:
    """Train, keeping the best epoch's weights (dev macro-F1 with thresholds chosen on dev) in the run folder.

    Under DDP every rank returns; the process group is gone by then, so rank 0 finishes the run alone."""
    d, device = setup_distributed()
    try:
        return _train(config, d, device, observer, soft_targets)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(
    config: TrainConfig,
    d: Dist,
    device: torch.device,
    observer: TrainingObserver | None,
    soft_targets: SoftTargets | None,
) -> Trained:
    precision = resolve_precision(config.precision, device)  # config.yaml keeps what was asked for
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
    started = time.time()
    seed_everything(config.seed)

    data = load_data(config)
    labels = data.taxonomy.labels
    backbone_source = resolve_backbone(config.backbone)
    tokenizer = load_tokenizer(backbone_source)
    if config.emoji_names:
        tokenizer = with_emoji_names(tokenizer, data.train_emoji)
    model = build_classifier(
        backbone_source,
        config.head,
        len(labels),
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
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    run_dir = prepare_run_dir(config, model_bytes) if d.main else Path(config.run_dir or "")
    if d.world > 1:  # every rank must know rank 0's folder (it may carry a timestamp)
        holder = [str(run_dir)]
        dist.broadcast_object_list(holder, src=0)
        run_dir = Path(holder[0])
    model.to(device)

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    copies, copied_from = word_dropped_copies(data.train, config.augment_copies, config.augment_word_drop, config.seed)
    train_examples = [*data.train, *copies]
    origins = [*data.train, *(data.train[i] for i in copied_from)]
    train_ids = encode_texts(tokenizer, [e.text for e in train_examples], config.max_len)
    dev_ids = encode_texts(tokenizer, [e.text for e in data.dev], config.max_len)
    y_train = as_indicator_matrix([e.labels for e in train_examples], "train", len(labels)).astype(np.float32)
    y_dev = as_indicator_matrix([e.labels for e in data.dev], "dev", len(labels))
    pos_weight = positive_weights(y_train, config.pos_weight)
    pos_weight = pos_weight.to(device) if pos_weight is not None else None
    membership = torch.from_numpy(data.taxonomy.coarse_groups()[1]).to(device) if config.aux_weight else None
    soft_train = None
    if soft_targets is not None:  # rank 0 first: it may compute the teachers' probabilities and cache them
        if d.main:
            soft_train = soft_targets.probabilities(run_dir, train_examples, labels, origins)
        d.wait_for_main()
        if not d.main:
            soft_train = soft_targets.probabilities(run_dir, train_examples, labels, origins)
    lengths = [len(x) for x in train_ids]
    # Each row's share of the soft-label loss: the copies may have their own.
    soft_share = np.full(len(train_examples), config.distill_weight, dtype=np.float32)
    if config.copies_distill_weight is not None:
        soft_share[len(data.train) :] = config.copies_distill_weight

    if d.main:
        write_run_files(run_dir, config, data, tokenizer, model, d, precision, start_files)
    ddp_model = DistributedDataParallel(model) if d.world > 1 else model
    # dynamic=True: length-grouped batches change shape every step, and one symbolic graph serves them all.
    step_model = torch.compile(ddp_model, dynamic=True) if config.compile else ddp_model
    # The average is what gets evaluated and saved; the raw weights keep training.
    ema = (
        torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema_decay), use_buffers=True
        )
        if config.ema_decay
        else None
    )
    scored = ema.module if ema else model
    # Reads no random numbers (eval mode), so a resumed run rebuilds the same cache and repeats bit for bit.
    frozen = (
        FrozenBottom(model, config.train_last_layers, train_ids, pad_id, device, precision, config.eval_batch_size)
        if config.cache_frozen_layers
        else None
    )

    # The fused kernel is several times faster than the per-tensor one on CPU as well as on CUDA.
    optimizer = torch.optim.AdamW(param_groups(model, config), fused=device.type in ("cpu", "cuda"))
    plan_len = len(batch_plan(lengths, config.batch_size, config.seed, 0))
    steps_per_epoch = math.ceil(plan_len / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config, total_steps))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    # The epoch's running loss is state too: a run resumed mid-epoch must log the same train_loss.
    state = {
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "best_f1": -1.0,
        "best_epoch": 0,
        "bad_epochs": 0,
        "metrics_bytes": 0,
        "wall_seconds": 0.0,
        "stopped": False,
        "epoch_loss": 0.0,
        "epoch_examples": 0,
    }
    metrics_path = run_dir / runfolder.METRICS_LOG
    resumed = load_latest_checkpoint(run_dir / runfolder.CHECKPOINTS) if config.resume else None
    if resumed:
        model_state, train_state, saved, ckpt = resumed
        state.update(saved)
        model.load_state_dict(model_state)
        optimizer.load_state_dict(train_state["optimizer"])
        scheduler.load_state_dict(train_state["scheduler"])
        scaler.load_state_dict(train_state["scaler"])
        if ema:
            ema.load_state_dict(train_state["ema"])
        torch.set_rng_state(train_state["torch_rng"])
        if torch.cuda.is_available() and train_state.get("cuda_rng"):  # dropout on the GPU repeats too
            torch.cuda.set_rng_state_all(train_state["cuda_rng"])
        if d.main:
            with open(metrics_path, "r+b") as handle:  # drop lines logged after the checkpoint
                handle.truncate(state["metrics_bytes"])
            print(f"emoscope: resumed from {ckpt} (epoch {state['epoch'] + 1}, step {state['step']})", flush=True)
    elif d.main:
        metrics_path.write_bytes(b"")

    if observer and d.main:
        observer.setup(run_dir, model, tokenizer, data)
        if state["step"] == 0:
            observer.on_epoch(model, 0)
    if observer:
        d.wait_for_main()

    def log(record: dict) -> None:
        if d.main:
            with open(metrics_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def checkpoint() -> None:
        if d.main:
            handle_pos = metrics_path.stat().st_size
            save_checkpoint(
                run_dir / runfolder.CHECKPOINTS,
                state["step"],
                model.state_dict(),
                {
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    **({"ema": ema.state_dict()} if ema else {}),
                },
                {**state, "metrics_bytes": handle_pos, "wall_seconds": state["wall_seconds"] + time.time() - started},
                config.keep_checkpoints,
            )
        d.wait_for_main()

    def example_loss(
        logits: torch.Tensor, gold: torch.Tensor, teacher: torch.Tensor | None, share: torch.Tensor | None
    ) -> torch.Tensor:
        """Per-example loss: gold labels, then the teachers' `share` (per example), then the auxiliary groups."""
        loss = multilabel_loss(logits, gold, config, pos_weight)
        if teacher is not None:
            soft = distillation_loss(logits, teacher, config.distill_temperature)
            loss = (1 - share) * loss + share * soft
        if membership is not None:
            loss = loss + config.aux_weight * hierarchy_loss(logits, gold, membership)
        return loss

    def sample_loss(
        logits: torch.Tensor, gold: torch.Tensor, teacher: torch.Tensor | None, share: torch.Tensor | None
    ) -> torch.Tensor:
        """Per-example loss of one dropout sample; with R-Drop the batch ran twice, one copy above the other."""
        if not config.rdrop_weight:
            return example_loss(logits, gold, teacher, share)
        first, second = logits.chunk(2)
        both = (example_loss(first, gold, teacher, share) + example_loss(second, gold, teacher, share)) / 2
        return both + config.rdrop_weight * rdrop_loss(first, second)

    def batch_loss(
        rows: np.ndarray, sync: bool, group_size: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Forward and backward of these rows of a batch (gradients add up in the parameters); their summed
        loss, detached. With `generator`, this thread's dropout masks come from it."""
        batch = collate([train_ids[r] for r in rows], pad_id, y_train[rows])
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        teacher = None if soft_train is None else torch.from_numpy(soft_train[rows]).to(device)
        share = None if soft_train is None else torch.from_numpy(soft_share[rows]).to(device)
        with (
            contextlib.nullcontext() if sync else ddp_model.no_sync(),
            autocast(device, precision),
            stream_generator(generator),
        ):
            inputs = (batch["input_ids"], batch["attention_mask"])
            if config.rdrop_weight:
                inputs, rows = tuple(torch.cat([x, x]) for x in inputs), np.concatenate([rows, rows])
            if frozen is not None:
                samples = frozen(*inputs, config.dropout_samples, rows=rows)
            else:
                samples = step_model(*inputs, config.dropout_samples)
            losses = [sample_loss(logits, batch["labels"], teacher, share) for logits in samples]
            loss = torch.stack(losses).mean(dim=0).sum()
            # Normalised by the global group size; DDP averages over ranks, hence * world.
            scaled = loss * d.world / group_size
        scaler.scale(scaled).backward()
        return loss.detach()

    def streams_loss(rows: np.ndarray, group_size: int) -> torch.Tensor:
        """`batch_loss` of the batch in `config.train_streams` interleaved parts at once, one thread each; each
        part draws its dropout masks from a generator seeded from the global one, so runs repeat (bit for bit
        with two parts; with more, gradients add in the order the threads finish, so up to float rounding)."""
        seeds = torch.randint(2**62, (config.train_streams,)).tolist()
        parts = [(rows[w :: config.train_streams], torch.Generator().manual_seed(s)) for w, s in enumerate(seeds)]
        done = [streams.submit(batch_loss, part, True, group_size, gen) for part, gen in parts if len(part)]
        return sum(f.result() for f in done)

    def dev_scores(net: nn.Module) -> dict:
        """Dev metrics of `net` with thresholds chosen on dev: what picks the best epoch."""
        probs = evaluate_split(net, dev_ids, pad_id, d, device, config.eval_batch_size, precision)
        choice = choose_thresholds(config.threshold_strategy, y_dev, probs, config.threshold, labels)
        return compute_metrics(y_dev, probs, choice.values, labels).summary

    # One torch thread per stream: where a second thread adds little to one stream, a second stream uses the core.
    streams = (
        ThreadPoolExecutor(config.train_streams, initializer=torch.set_num_threads, initargs=(1,))
        if config.train_streams > 1
        else None
    )
    try:
        for epoch in range(state["epoch"], config.epochs):
            if state["stopped"]:
                break
            plan = batch_plan(lengths, config.batch_size, config.seed, epoch, group_by_length=config.group_by_length)
            plan = [b for b in plan if len(b) >= d.world]
            groups = [plan[i : i + config.grad_accum] for i in range(0, len(plan), config.grad_accum)]
            start_group = state["batch"] // config.grad_accum
            ddp_model.train()
            bar = tqdm(
                total=sum(len(b) for b in plan),
                initial=sum(len(b) for b in plan[: state["batch"]]),
                unit="ex",
                desc=f"epoch {epoch + 1}/{config.epochs}",
                disable=not (d.main and config.progress),
                dynamic_ncols=True,
                mininterval=1.0,
            )
            window_start, window_examples = time.time(), 0
            for group in groups[start_group:]:
                group_size = sum(len(b) for b in group)
                step_loss = torch.zeros((), device=device)
                for i, batch_rows in enumerate(group):
                    rows = batch_rows[d.rank :: d.world]
                    if streams:
                        step_loss += streams_loss(rows, group_size)
                    else:
                        step_loss += batch_loss(rows, i == len(group) - 1 or d.world == 1, group_size)
                if config.clip_grad:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                if ema:
                    ema.update_parameters(model)
                if d.world > 1:
                    dist.all_reduce(step_loss)
                state["step"] += 1
                state["batch"] += len(group)
                mean_loss = step_loss.item() / group_size
                state["epoch_loss"] += step_loss.item()
                state["epoch_examples"] += group_size
                window_examples += group_size
                bar.update(group_size)
                if state["step"] % config.log_every == 0:
                    rate = window_examples / max(time.time() - window_start, 1e-9)
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    log(
                        {
                            "kind": "step",
                            "step": state["step"],
                            "epoch": epoch + 1,
                            "loss": mean_loss,
                            "lr": scheduler.get_last_lr()[0],
                            "examples_per_s": rate,
                        }
                    )
                    window_start, window_examples = time.time(), 0
                if state["step"] % config.checkpoint_every == 0 and state["batch"] < len(plan):
                    checkpoint()
            bar.close()
            train_loss = state["epoch_loss"] / max(state["epoch_examples"], 1)

            dev_result = dev_scores(scored)
            dev_f1 = dev_result["macro_f1"]
            raw = {"dev_macro_f1_raw_weights": dev_scores(model)["macro_f1"]} if ema else {}
            improved = dev_f1 > state["best_f1"]
            if improved:
                state.update(best_f1=dev_f1, best_epoch=epoch + 1, bad_epochs=0)
                if d.main:
                    save_weights(scored.state_dict(), run_dir / runfolder.WEIGHTS, {"epoch": str(epoch + 1)})
            else:
                state["bad_epochs"] += 1
            log(
                {
                    "kind": "epoch",
                    "epoch": epoch + 1,
                    "step": state["step"],
                    "train_loss": train_loss,
                    "dev_macro_f1": dev_f1,
                    "dev_micro_f1": dev_result["micro_f1"],
                    **raw,
                    "best_epoch": state["best_epoch"],
                    "seconds": time.time() - started + state["wall_seconds"],
                }
            )
            if d.main:
                raw_note = f", raw weights {raw['dev_macro_f1_raw_weights']:.4f}" if ema else ""
                print(
                    f"epoch {epoch + 1}: train loss {train_loss:.4f}, dev macro-F1 {dev_f1:.4f}{raw_note} "
                    f"({config.threshold_strategy} thresholds){' *best*' if improved else ''}",
                    flush=True,
                )
                if observer:
                    observer.on_epoch(scored, epoch + 1)  # the others wait for it in the checkpoint below
            patience = config.early_stopping_patience
            if patience is not None and state["bad_epochs"] >= patience:
                if d.main:
                    print(f"early stopping: no dev improvement for {patience} epochs", flush=True)
                state["stopped"] = True
            state.update(epoch=epoch + 1, batch=0, epoch_loss=0.0, epoch_examples=0)
            checkpoint()
    finally:
        if streams:
            streams.shutdown()

    return Trained(run_dir, data, device, precision, state["wall_seconds"] + time.time() - started, d.main)


# ---------------------------------------------------------------- the run folder


def write_run_files(
    run_dir: Path,
    config: TrainConfig,
    data: SplitData,
    tokenizer,
    model: nn.Module,
    d: Dist,
    precision: str,
    start_files: list[Path],
) -> None:
    """Before the first step: what a reader needs besides the weights, so a run stopped early still loads."""
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
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
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

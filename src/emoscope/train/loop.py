"""The one training loop: DDP, mixed precision, accumulation, early stopping and resume, in plain sight.

It trains and keeps what training makes: the best weights (dev macro-F1), checkpoints and `metrics.jsonl`.
Everything before the first step is in `setup`, the losses in `losses`; thresholds, final scores, exports and
reports come after the loop, in `emoscope.recipes.train`.

Launch with `emoscope train` (one process) or `torchrun --nproc_per_node=N -m emoscope train` (DDP: nccl on
CUDA, gloo on CPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from emoscope.core import runfolder
from emoscope.core.config import TrainConfig
from emoscope.data.batching import batch_plan, collate
from emoscope.data.splits import SplitData, load_data
from emoscope.evaluate import choose_thresholds, compute_metrics
from emoscope.models.dropout import stream_generator
from emoscope.models.frozen import FrozenBottom
from emoscope.models.inference import autocast, predict_probs
from emoscope.models.weights import save_weights
from emoscope.train.checkpoint import save_checkpoint
from emoscope.train.losses import Loss
from emoscope.train.setup import (
    Dist,
    Optimisation,
    Progress,
    SoftTargets,
    TrainData,
    build_model,
    encode_data,
    frozen_bottom,
    loss_of,
    optimisation,
    parallel,
    seed_everything,
    set_up_device,
    setup_distributed,
    shared_run_dir,
    start_or_resume,
    write_run_files,
)


class TrainingObserver(Protocol):
    """Called on rank 0 only; e.g. the representation tracker. Must not change training."""

    def setup(self, run_dir: Path, model: nn.Module, tokenizer, data: SplitData) -> None: ...
    def on_epoch(self, model: nn.Module, epoch: int) -> None: ...


@dataclass
class Trained:
    """What the loop hands to what comes after it (`emoscope.recipes.train`); `main` is False on ranks other than 0."""

    run_dir: Path
    data: SplitData
    device: torch.device
    precision: str  # the configured precision resolved on this device ("auto" -> bf16 or fp32...)
    wall_seconds: float
    main: bool


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
    precision = set_up_device(config, d, device)
    started = time.time()
    seed_everything(config.seed)
    data = load_data(config)
    model, tokenizer, start_files = build_model(config, data)
    run_dir = shared_run_dir(config, d, model)
    model.to(device)
    train_data = encode_data(config, data, tokenizer, d, run_dir, soft_targets)
    if d.main:
        write_run_files(run_dir, config, data, tokenizer, model, d, precision, start_files, started)
    ddp_model, step_model = parallel(config, d, model)
    opt = optimisation(config, model, device, precision, train_data.lengths)
    scored = opt.ema.module if opt.ema else model
    frozen = frozen_bottom(config, model, train_data, device, precision)
    progress, metrics_path = start_or_resume(config, d, run_dir, model, opt)
    if observer and d.main:
        observer.setup(run_dir, model, tokenizer, data)
        if progress.step == 0:
            observer.on_epoch(model, 0)
    if observer:
        d.wait_for_main()
    loss = loss_of(config, train_data, device)
    steps = Steps(config, d, device, precision, train_data, loss, ddp_model, step_model, frozen, opt.scaler)
    log = MetricsLog(metrics_path, d.main)

    def checkpoint() -> None:
        if d.main:
            save_state(run_dir, config, model, opt, progress, metrics_path, time.time() - started)
        d.wait_for_main()

    try:
        for epoch in range(progress.epoch, config.epochs):
            if progress.stopped:
                break
            plan = batch_plan(
                train_data.lengths, config.batch_size, config.seed, epoch, group_by_length=config.group_by_length
            )
            plan = [b for b in plan if len(b) >= d.world]
            groups = [plan[i : i + config.grad_accum] for i in range(0, len(plan), config.grad_accum)]
            ddp_model.train()
            bar = epoch_bar(config, d, plan, progress, epoch)
            window_start, window_examples = time.time(), 0
            for group in groups[progress.batch // config.grad_accum :]:
                group_size = sum(len(b) for b in group)
                step_loss = steps.group_loss(group, group_size)
                optimizer_step(config, model, opt)
                if d.world > 1:
                    dist.all_reduce(step_loss)
                progress.step += 1
                progress.batch += len(group)
                mean_loss = step_loss.item() / group_size
                progress.epoch_loss += step_loss.item()
                progress.epoch_examples += group_size
                window_examples += group_size
                bar.update(group_size)
                if progress.step % config.log_every == 0:
                    rate = window_examples / max(time.time() - window_start, 1e-9)
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    log.step(progress, epoch, mean_loss, opt.scheduler.get_last_lr()[0], rate)
                    window_start, window_examples = time.time(), 0
                if progress.step % config.checkpoint_every == 0 and progress.batch < len(plan):
                    checkpoint()
            bar.close()
            end_epoch(config, d, epoch, progress, steps, model, scored, run_dir, log, started, observer)
            checkpoint()
    finally:
        steps.close()

    return Trained(run_dir, data, device, precision, progress.wall_seconds + time.time() - started, d.main)


def epoch_bar(config: TrainConfig, d: Dist, plan: list[np.ndarray], progress: Progress, epoch: int) -> tqdm:
    """The epoch's progress bar, in examples, on rank 0 (`--progress`); a resumed epoch starts where it stopped."""
    return tqdm(
        total=sum(len(b) for b in plan),
        initial=sum(len(b) for b in plan[: progress.batch]),
        unit="ex",
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not (d.main and config.progress),
        dynamic_ncols=True,
        mininterval=1.0,
    )


def optimizer_step(config: TrainConfig, model: nn.Module, opt: Optimisation) -> None:
    """One update from the gradients the group's batches added up, then the schedule and the average."""
    if config.clip_grad:
        opt.scaler.unscale_(opt.optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    opt.optimizer.zero_grad(set_to_none=True)
    opt.scheduler.step()
    if opt.ema:
        opt.ema.update_parameters(model)


def end_epoch(
    config: TrainConfig,
    d: Dist,
    epoch: int,
    progress: Progress,
    steps: Steps,
    model: nn.Module,
    scored: nn.Module,
    run_dir: Path,
    log: MetricsLog,
    started: float,
    observer: TrainingObserver | None,
) -> None:
    """Score dev, keep the weights if they are the best yet, log and report the epoch, stop early if dev has not
    improved for `early_stopping_patience` epochs."""
    train_loss = progress.epoch_loss / max(progress.epoch_examples, 1)
    dev_result = steps.dev_scores(scored)
    dev_f1 = dev_result["macro_f1"]
    raw = {"dev_macro_f1_raw_weights": steps.dev_scores(model)["macro_f1"]} if scored is not model else {}
    improved = dev_f1 > progress.best_f1
    if improved:
        progress.best_f1, progress.best_epoch, progress.bad_epochs = dev_f1, epoch + 1, 0
        if d.main:
            save_weights(scored.state_dict(), run_dir / runfolder.WEIGHTS, {"epoch": str(epoch + 1)})
    else:
        progress.bad_epochs += 1
    log.write(
        {
            "kind": "epoch",
            "epoch": epoch + 1,
            "step": progress.step,
            "train_loss": train_loss,
            "dev_macro_f1": dev_f1,
            "dev_micro_f1": dev_result["micro_f1"],
            **raw,
            "best_epoch": progress.best_epoch,
            "seconds": time.time() - started + progress.wall_seconds,
        }
    )
    if d.main:
        raw_note = f", raw weights {raw['dev_macro_f1_raw_weights']:.4f}" if raw else ""
        print(
            f"epoch {epoch + 1}: train loss {train_loss:.4f}, dev macro-F1 {dev_f1:.4f}{raw_note} "
            f"({config.threshold_strategy} thresholds){' *best*' if improved else ''}",
            flush=True,
        )
        if observer:
            observer.on_epoch(scored, epoch + 1)  # the others wait for it in the checkpoint that follows
    patience = config.early_stopping_patience
    if patience is not None and progress.bad_epochs >= patience:
        if d.main:
            print(f"early stopping: no dev improvement for {patience} epochs", flush=True)
        progress.stopped = True
    progress.epoch, progress.batch, progress.epoch_loss, progress.epoch_examples = epoch + 1, 0, 0.0, 0


def save_state(
    run_dir: Path,
    config: TrainConfig,
    model: nn.Module,
    opt: Optimisation,
    progress: Progress,
    metrics_path: Path,
    seconds: float,
) -> None:
    """A checkpoint of everything a resumed run needs to repeat this one (rank 0)."""
    save_checkpoint(
        run_dir / runfolder.CHECKPOINTS,
        progress.step,
        model.state_dict(),
        {
            "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(),
            "scaler": opt.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            **({"ema": opt.ema.state_dict()} if opt.ema else {}),
        },
        {
            **dataclasses.asdict(progress),
            "metrics_bytes": metrics_path.stat().st_size,
            "wall_seconds": progress.wall_seconds + seconds,
        },
        config.keep_checkpoints,
    )


@dataclass
class MetricsLog:
    """`metrics.jsonl`, written by rank 0: one JSON object a line."""

    path: Path
    main: bool

    def write(self, record: dict) -> None:
        if self.main:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    def step(self, progress: Progress, epoch: int, loss: float, lr: float, rate: float) -> None:
        self.write(
            {"kind": "step", "step": progress.step, "epoch": epoch + 1, "loss": loss, "lr": lr, "examples_per_s": rate}
        )


class Steps:
    """Forward and backward of a step's batches, and dev scores: what one step of the loop computes."""

    def __init__(
        self,
        config: TrainConfig,
        d: Dist,
        device: torch.device,
        precision: str,
        train: TrainData,
        loss: Loss,
        ddp_model: nn.Module,
        step_model: nn.Module,
        frozen: FrozenBottom | None,
        scaler: torch.amp.GradScaler,
    ):
        self.config, self.d, self.device, self.precision = config, d, device, precision
        self.train, self.loss, self.ddp_model, self.step_model = train, loss, ddp_model, step_model
        self.frozen, self.scaler = frozen, scaler  # frozen: the step's model over the cached bottom, if any
        # One torch thread per stream: where a second thread adds little to one stream, a second stream uses the
        # core.
        self.streams = (
            ThreadPoolExecutor(config.train_streams, initializer=torch.set_num_threads, initargs=(1,))
            if config.train_streams > 1
            else None
        )

    def close(self) -> None:
        if self.streams:
            self.streams.shutdown()

    def group_loss(self, group: list[np.ndarray], group_size: int) -> torch.Tensor:
        """The summed loss of a step's batches (`grad_accum` of them), this rank's share of each; DDP syncs the
        gradients on the last one."""
        d = self.d
        step_loss = torch.zeros((), device=self.device)
        for i, batch_rows in enumerate(group):
            rows = batch_rows[d.rank :: d.world]
            if self.streams:
                step_loss += self.streams_loss(rows, group_size)
            else:
                step_loss += self.batch_loss(rows, i == len(group) - 1 or d.world == 1, group_size)
        return step_loss

    def batch_loss(
        self, rows: np.ndarray, sync: bool, group_size: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Forward and backward of these rows of a batch (gradients add up in the parameters); their summed
        loss, detached. With `generator`, this thread's dropout masks come from it."""
        config, train, device = self.config, self.train, self.device
        batch = collate([train.train_ids[r] for r in rows], train.pad_id, train.y_train[rows])
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        teacher = None if train.soft is None else torch.from_numpy(train.soft[rows]).to(device)
        share = None if train.soft is None else torch.from_numpy(train.soft_share[rows]).to(device)
        with (
            contextlib.nullcontext() if sync else self.ddp_model.no_sync(),
            autocast(device, self.precision),
            stream_generator(generator),
        ):
            inputs = (batch["input_ids"], batch["attention_mask"])
            if config.rdrop_weight:
                inputs, rows = tuple(torch.cat([x, x]) for x in inputs), np.concatenate([rows, rows])
            if self.frozen is not None:
                samples = self.frozen(*inputs, config.dropout_samples, rows=rows)
            else:
                samples = self.step_model(*inputs, config.dropout_samples)
            losses = [self.loss(logits, batch["labels"], teacher, share) for logits in samples]
            loss = torch.stack(losses).mean(dim=0).sum()
            # Normalised by the global group size; DDP averages over ranks, hence * world.
            scaled = loss * self.d.world / group_size
        self.scaler.scale(scaled).backward()
        return loss.detach()

    def streams_loss(self, rows: np.ndarray, group_size: int) -> torch.Tensor:
        """`batch_loss` of the batch in `config.train_streams` interleaved parts at once, one thread each; each
        part draws its dropout masks from a generator seeded from the global one, so runs repeat (bit for bit
        with two parts; with more, gradients add in the order the threads finish, so up to float rounding)."""
        n = self.config.train_streams
        seeds = torch.randint(2**62, (n,)).tolist()
        parts = [(rows[w::n], torch.Generator().manual_seed(s)) for w, s in enumerate(seeds)]
        done = [self.streams.submit(self.batch_loss, part, True, group_size, gen) for part, gen in parts if len(part)]
        return sum(f.result() for f in done)

    def dev_scores(self, net: nn.Module) -> dict:
        """Dev metrics of `net` with thresholds chosen on dev: what picks the best epoch."""
        config, train = self.config, self.train
        labels = train.data.taxonomy.labels
        probs = evaluate_split(
            net, train.dev_ids, train.pad_id, self.d, self.device, config.eval_batch_size, self.precision
        )
        choice = choose_thresholds(config.threshold_strategy, train.y_dev, probs, config.threshold, labels)
        return compute_metrics(train.y_dev, probs, choice.values, labels).summary


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

"""Faults for real: SIGKILL at random moments and mid-checkpoint, damaged checkpoints, a dead DDP rank, no disk."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import slice_goemotions
from conftest import train_args as tiny_train_args
from safetensors.torch import load_file

from emoscope.cli import main
from emoscope.core.errors import UserError
from emoscope.train.checkpoint import load_latest_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
WALL_CLOCK = {"examples_per_s", "seconds"}  # the only fields of metrics.jsonl a restart may change


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """--num_threads in an in-process run must not leak into later tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(goemotions_dir, tmp_path_factory) -> Path:
    """240 train, 60 dev, 60 test rows of the official files."""
    return slice_goemotions(goemotions_dir, tmp_path_factory.mktemp("goemotions-faults"), 240, 60, 60)


def train_args(backbone: Path, data: Path, run: Path, *extra: str) -> list[str]:
    """Two epochs, a checkpoint every two steps, one thread, no early stopping: many places to be killed."""
    return tiny_train_args(
        backbone,
        data,
        run,
        "--epochs",
        "2",
        "--lr",
        "1e-3",
        "--log_every",
        "1",
        "--checkpoint_every",
        "2",
        "--num_threads",
        "1",
        "--early_stopping_patience",
        "none",
        *extra,
    )


def launch(args: list[str], log: Path, torchrun: bool = False, env: dict | None = None) -> subprocess.Popen:
    prefix = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if torchrun else []
    with open(log, "ab") as handle:
        return subprocess.Popen(
            [sys.executable, *prefix, "-m", "emoscope", *args],
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        )


def wait_for(condition, proc: subprocess.Popen, log: Path, timeout: float = 180.0, step: float = 0.002) -> bool:
    """Poll until `condition()`; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(step)
    return True


def writing_checkpoint(root: Path, since: float) -> bool:
    """A temporary checkpoint folder made after `since` exists: a checkpoint is being written right now."""
    for tmp in root.glob(".tmp-step_*"):
        with contextlib.suppress(FileNotFoundError):
            if tmp.stat().st_mtime >= since:
                return True
    return False


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def records(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in rows]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    for name in ("eval/test_metrics.json", "eval/dev_metrics.json", "thresholds.json"):
        assert (a / name).read_text() == (b / name).read_text(), name
    assert records(a) == records(b)


def test_sigkill_at_random_moments_and_mid_checkpoint_then_resume_equals_a_straight_run(tiny_models, data, tmp_path):
    straight = tmp_path / "straight"
    assert main(train_args(tiny_models["bert"], data, straight)) == 0
    run, log = tmp_path / "killed", tmp_path / "killed.log"
    checkpoints = run / "checkpoints"
    metrics = run / "metrics.jsonl"
    rng = random.Random(1234)
    kills = []

    def logged_steps() -> int:
        return metrics.read_text().count('"kind": "step"') if metrics.exists() else 0

    # Three kills after a random number of the 30 steps (the first before any checkpoint exists): counted in
    # steps, not seconds, so that a fast machine cannot finish the run before the kill.
    for i, target in enumerate([1, *sorted(rng.sample(range(3, 18), 2))]):
        proc = launch(train_args(tiny_models["bert"], data, run, *(["--resume"] if i else [])), log)
        wait_for(lambda target=target: logged_steps() >= target, proc, log, step=0.0005)
        kill(proc)
        kills.append(proc.returncode)
    # Then kill right while a checkpoint is being written: its temporary folder is still there afterwards.
    caught = False
    for _ in range(4):
        since = time.time()
        proc = launch(train_args(tiny_models["bert"], data, run, "--resume"), log)
        if wait_for(lambda since=since: writing_checkpoint(checkpoints, since), proc, log, step=0.0005):
            kill(proc)
            caught = writing_checkpoint(checkpoints, since)
        if caught:
            break
    assert caught, "never killed a process in the middle of writing a checkpoint"
    assert not (run / "eval" / "test_metrics.json").exists()
    assert all(code == -signal.SIGKILL for code in kills)

    proc = launch(train_args(tiny_models["bert"], data, run, "--resume"), log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert "emoscope: resumed from" in log.read_text()
    assert not list(checkpoints.glob(".tmp-step_*"))  # the interrupted checkpoint was written again, whole
    assert_same_run(straight, run)


# ---------------------------------------------------------------- damaged checkpoints, one at a time


@pytest.fixture
def checkpoints(tmp_path) -> Path:
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        save_checkpoint(
            root,
            step,
            {"w": torch.full((4,), float(step))},
            {"torch_rng": torch.get_rng_state()},
            {"step": step},
            keep=3,
        )
    return root


def loaded_step(root: Path) -> int:
    _, _, state, path = load_latest_checkpoint(root)
    assert path.name == f"step_{state['step']}"
    return state["step"]


def test_the_latest_pointer_names_the_newest_complete_checkpoint(checkpoints, capsys):
    assert (checkpoints / "latest").read_text() == "step_3"
    assert loaded_step(checkpoints) == 3 and capsys.readouterr().out == ""
    save_checkpoint(checkpoints, 4, {"w": torch.zeros(4)}, {}, {"step": 4}, keep=2)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest", "step_3", "step_4"]


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(checkpoints, capsys):
    weights = checkpoints / "step_3" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3:] = bytes(b ^ 0xFF for b in data[-3:])
    weights.write_bytes(bytes(data))
    assert loaded_step(checkpoints) == 2
    assert capsys.readouterr().out == (
        f"emoscope: checkpoint {checkpoints / 'step_3'} is damaged (ValueError: "
        f"{weights} does not match its recorded sha256); trying an older one\n"
    )


@pytest.mark.parametrize("damage", ["truncated state.json", "no state.json", "no train state"])
def test_a_partial_checkpoint_falls_back_to_the_previous_one(checkpoints, damage, capsys):
    newest = checkpoints / "step_3"
    if damage == "truncated state.json":
        (newest / "state.json").write_text((newest / "state.json").read_text()[:20])
    elif damage == "no state.json":
        (newest / "state.json").unlink()
    else:
        (newest / "train_state.pt").unlink()
    assert loaded_step(checkpoints) == 2
    assert capsys.readouterr().out.startswith(f"emoscope: checkpoint {newest} is damaged (")


def test_a_leftover_temporary_checkpoint_is_ignored(checkpoints, capsys):
    leftover = checkpoints / ".tmp-step_4"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half a file")
    assert loaded_step(checkpoints) == 3 and capsys.readouterr().out == ""


def test_latest_naming_a_missing_folder_uses_the_newest_complete_one(checkpoints, capsys):
    (checkpoints / "latest").write_text("step_9")
    assert loaded_step(checkpoints) == 3 and capsys.readouterr().out == ""


def test_a_kill_between_rename_and_pointer_update_resumes_from_the_pointer(checkpoints):
    (checkpoints / "latest").write_text("step_2")  # step_3 complete, pointer not yet moved
    assert loaded_step(checkpoints) == 2


def test_every_checkpoint_damaged_is_one_clear_error(checkpoints, capsys):
    for step in (1, 2, 3):
        (checkpoints / f"step_{step}" / "state.json").unlink()
    with pytest.raises(UserError) as info:
        load_latest_checkpoint(checkpoints)
    assert str(info.value) == f"every checkpoint in {checkpoints} is damaged; start again without --resume"


# ---------------------------------------------------------------- DDP: one rank dies


def workers(torchrun: int) -> dict[int, int]:
    """rank -> pid of the worker processes torchrun started."""
    found = {}
    for task in Path(f"/proc/{torchrun}/task").glob("*"):
        for pid in (task / "children").read_text().split():
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            rank = next((int(v[5:]) for v in environ if v.startswith(b"RANK=")), None)
            if rank is not None:
                found[rank] = int(pid)
    return found


def test_killing_one_ddp_rank_stops_the_job_and_resume_continues(tiny_models, data, tmp_path):
    run, log = tmp_path / "ddp", tmp_path / "ddp.log"
    args = train_args(tiny_models["bert"], data, run, "--epochs", "1")
    env = {"EMOSCOPE_DIST_TIMEOUT": "30"}
    proc = launch(args, log, torchrun=True, env=env)
    latest = run / "checkpoints" / "latest"
    assert wait_for(latest.exists, proc, log, step=0.05), log.read_text()[-3000:]
    ranks = workers(proc.pid)
    assert sorted(ranks) == [0, 1], ranks
    os.kill(ranks[1], signal.SIGKILL)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        for pid in (proc.pid, *ranks.values()):
            os.kill(pid, signal.SIGKILL)
        raise
    assert code != 0
    assert f"Signal 9 (SIGKILL) received by PID {ranks[1]}" in log.read_text(), log.read_text()[-3000:]
    assert not [pid for pid in ranks.values() if Path(f"/proc/{pid}").exists()]
    step_at_kill = int(latest.read_text().split("_")[1])

    proc = launch([*args, "--resume"], log, torchrun=True, env=env)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert f"emoscope: resumed from {run / 'checkpoints' / f'step_{step_at_kill}'}" in log.read_text()
    assert int(latest.read_text().split("_")[1]) > step_at_kill
    assert (run / "eval" / "test_metrics.json").is_file()


# ---------------------------------------------------------------- no room, no permission: before training


def test_a_full_disk_is_refused_before_training(tiny_models, data, tmp_path, monkeypatch, capsys):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1 << 20))
    run = tmp_path / "run"
    assert main(train_args(tiny_models["bert"], data, run)) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        rf"emoscope: error: not enough disk space in {re.escape(str(run))}: 1 MiB free, about "
        r"\d+ MiB needed for checkpoints and weights\n",
        err,
    ), err
    assert not run.exists()


def test_an_unwritable_run_folder_is_refused_before_training(tiny_models, data, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for run, problem in ((blocker / "run", "is not writable: Not a directory"), (blocker, "is a file, not a folder")):
        assert main(train_args(tiny_models["bert"], data, run)) == 2
        assert capsys.readouterr().err == f"emoscope: error: run folder {run} {problem}\n"
    assert blocker.read_text() == "not a folder"


def _rank_waits_for_slow_main(rank: int, port: int, result: dict) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    os.environ.update(EMOSCOPE_DIST_TIMEOUT="2", EMOSCOPE_MAIN_WORK_TIMEOUT="60")
    from emoscope.train.setup import setup_distributed

    d, _ = setup_distributed()
    try:
        if d.main:
            time.sleep(6)  # rank 0's lone work (a checkpoint on a slow disk), three times the collectives' timeout
        d.wait_for_main()
        total = torch.ones(1)
        torch.distributed.all_reduce(total)
        result[rank] = float(total)
    finally:
        torch.distributed.destroy_process_group()


def test_other_ranks_wait_for_rank_0s_lone_work_beyond_the_collective_timeout():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        result = manager.dict()
        mp.spawn(_rank_waits_for_slow_main, args=(port, result), nprocs=2, join=True)
        assert dict(result) == {0: 2.0, 1: 2.0}

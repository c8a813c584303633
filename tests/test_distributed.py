"""Training in 2 processes under torchrun (gloo, this CPU): one run folder, the same weights on both ranks,
and the weights one process reaches with the same global batch and seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gankit.checkpoint import read_meta

# No batch-coupled layers (batch norm, minibatch std), so one process and two see the same thing; R1 so that a
# gradient penalty (a double backward) runs under the gradient averaging too.
CONFIG = """
[data]
name = "ring8"
n = 2000
batch_size = 64
[model]
g_hidden = 16
d_hidden = 16
[loss]
penalty = "r1"
gp_weight = 0.05
[train]
steps = 12
d_steps = 2
log_every = 4
checkpoint_every = 6
precision = "fp32"
device = "cpu"  # gloo on the CPU, also on a machine with a GPU
[eval]
every = 0
"""


def gankit(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "gankit", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    (root / "tiny.toml").write_text(CONFIG)
    two = gankit("train", "tiny.toml", "--run-dir", "runs/two", "--nproc", "2", "--quiet", cwd=root)
    one = gankit("train", "tiny.toml", "--run-dir", "runs/one", "--quiet", cwd=root)
    assert two.returncode == 0, two.stderr[-3000:]
    assert one.returncode == 0, one.stderr[-3000:]
    return root, two


def test_two_processes_write_one_run_folder(runs):
    root, two = runs
    assert sorted(p.name for p in (root / "runs").iterdir()) == ["one", "two"]
    assert two.stdout.count("trained 12 steps") == 1  # rank 0 speaks for the job
    steps = [line for line in (root / "runs/two/metrics.jsonl").read_text().splitlines()]
    assert len(steps) == 3  # one writer: steps 4, 8, 12 once each


def test_ranks_hold_the_same_weights_and_match_one_process(runs):
    root, _ = runs
    meta = read_meta(root / "runs/two/checkpoints/latest.safetensors")
    assert meta["step"] == 12 and meta["world_size"] == 2 and meta["replica_digests_equal"] is True
    two = load_file(root / "runs/two/checkpoints/latest.safetensors")
    one = load_file(root / "runs/one/checkpoints/latest.safetensors")
    for name in [k for k in one if k.startswith(("G.", "D."))]:
        torch.testing.assert_close(two[name], one[name], rtol=0, atol=1e-5, msg=name)


def test_resume_under_two_processes_continues_from_the_checkpoint(runs):
    root, _ = runs
    r = gankit("train", "--resume", "--run-dir", "runs/two", "--steps", "18", "--nproc", "2", "--quiet", cwd=root)
    assert r.returncode == 0, r.stderr[-3000:]
    r1 = gankit("train", "--resume", "--run-dir", "runs/one", "--steps", "18", "--quiet", cwd=root)
    assert r1.returncode == 0, r1.stderr[-3000:]
    two = load_file(root / "runs/two/checkpoints/latest.safetensors")
    one = load_file(root / "runs/one/checkpoints/latest.safetensors")
    assert read_meta(root / "runs/two/checkpoints/latest.safetensors")["step"] == 18
    torch.testing.assert_close(two["G.net.0.weight"], one["G.net.0.weight"], rtol=0, atol=1e-5)


def test_evaluation_during_training_and_its_best_checkpoint_under_two_processes(tmp_path):
    """Rank 0 alone evaluates and writes checkpoints/best.safetensors, while rank 1 trains on: writing it must not
    wait on rank 1 (it hung, or broke at the last evaluation, when that write compared the ranks' weights)."""
    (tmp_path / "eval.toml").write_text(CONFIG.replace("[eval]\nevery = 0", "[eval]\nevery = 4\nn = 500"))
    r = gankit("train", "eval.toml", "--run-dir", "runs/eval", "--nproc", "2", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    best = read_meta(tmp_path / "runs" / "eval" / "checkpoints" / "best.safetensors")
    assert best["world_size"] == 2 and "eval" in best
    steps = [json.loads(line).get("step") for line in (tmp_path / "runs" / "eval" / "metrics.jsonl").open()
             if "eval" in json.loads(line)]
    assert steps == [4, 8, 12]


def test_a_batch_that_does_not_split_and_a_failing_rank_fail_fast(tmp_path):
    (tmp_path / "odd.toml").write_text(CONFIG.replace("batch_size = 64", "batch_size = 63"))
    r = gankit("train", "odd.toml", "--run-dir", "runs/odd", "--nproc", "2", "--quiet", cwd=tmp_path)
    assert r.returncode != 0 and "does not split into 2 processes" in r.stderr
    r = gankit("train", "nothing.toml", "--nproc", "2", cwd=tmp_path)  # checked before any process starts
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "nothing.toml" in r.stderr


FAILING_RANK = """
import sys
import gankit
from gankit.distributed import current

original = gankit.Trainer.train_step

def train_step(self, measure=False):  # rank 1 raises at step 3; rank 0 is then waiting in an all-reduce
    original(self, measure)
    if self.step == 3 and current().rank == 1:
        raise RuntimeError("rank 1 fails on purpose")

gankit.Trainer.train_step = train_step
gankit.train(sys.argv[1], run_dir="runs/fail", progress=False)
"""


def test_a_rank_that_fails_mid_run_ends_the_job_quickly(tmp_path):
    import time

    (tmp_path / "tiny.toml").write_text(CONFIG.replace("steps = 12", "steps = 500"))
    (tmp_path / "fail.py").write_text(FAILING_RANK)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                        "fail.py", "tiny.toml"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode != 0 and "rank 1 fails on purpose" in r.stderr
    assert time.monotonic() - start < 60  # not the process group's 10-minute timeout


def test_more_processes_than_gpus_is_a_one_line_error(monkeypatch):
    """NCCL cannot give two ranks one GPU: say so before CUDA's own error, and point to gloo."""
    from gankit import distributed
    from gankit.errors import GankitError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(GankitError, match=r"process 1 of this machine has no GPU of its own \(1 visible\).*cpu"):
        distributed.init("auto")


def test_ctrl_c_stops_a_two_process_job_cleanly_with_a_checkpoint(tmp_path):
    """Ctrl-C reaches the whole terminal's process group. The `--nproc` launcher passes it once to each rank: they
    stop at the same step, rank 0 checkpoints, the launcher exits 130 and nothing prints a traceback (torchrun,
    signalled itself, ended with one, and a second SIGINT to the ranks aborted them without a checkpoint)."""
    import signal
    import time

    (tmp_path / "tiny.toml").write_text(CONFIG.replace("steps = 12", "steps = 100000").replace(
        "checkpoint_every = 6", "checkpoint_every = 100000"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "train", "tiny.toml", "--run-dir", "runs/c", "--nproc",
                             "2", "--quiet"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # a process group of its own, as a terminal's job
    metrics = tmp_path / "runs" / "c" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "aborted" not in err and err.count("interrupted at step") == 1, err[-3000:]
    step = int(err.split("interrupted at step ")[1].split(";")[0])
    assert read_meta(tmp_path / "runs" / "c" / "checkpoints" / "latest.safetensors")["step"] == step > 0


def test_a_game_with_a_two_player_group_averages_its_gradients_over_ranks(tmp_path):
    """InfoGAN's group d holds D and Q: under 2 processes every player ends as one process's does."""
    (tmp_path / "tiny.toml").write_text(CONFIG.replace('penalty = "r1"', 'penalty = "none"')
                                        + '[game]\nname = "infogan"\ncategorical_codes = [4]\ncontinuous_codes = 1\n')
    two = gankit("train", "tiny.toml", "--run-dir", "runs/two", "--nproc", "2", "--quiet", cwd=tmp_path)
    one = gankit("train", "tiny.toml", "--run-dir", "runs/one", "--quiet", cwd=tmp_path)
    assert two.returncode == 0 and one.returncode == 0, (two.stderr + one.stderr)[-3000:]
    a = load_file(tmp_path / "runs/two/checkpoints/latest.safetensors")
    b = load_file(tmp_path / "runs/one/checkpoints/latest.safetensors")
    players = [k for k in b if k.startswith(("G.", "D.", "Q."))]
    assert any(k.startswith("Q.") for k in players) and any(k.startswith("opt_d.") for k in b)
    for name in players:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5, msg=name)

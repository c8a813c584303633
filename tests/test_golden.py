"""Golden test: the training code of this checkout trains bit-identically to the code at GOLDEN_BASE.

Stored hashes cannot work (float results depend on the CPU), so both versions train side by side on this
machine, from the same seeded configs:

* OLD: ``git archive GOLDEN_BASE src/gankit`` unpacked into a temporary folder (recipes and the bundled
  classifier weights are files in git, so the archive holds them); NEW: this checkout's ``src``.
* Each run is ``gankit.train(...)`` in a fresh ``python -c`` process whose ``PYTHONPATH`` points at one of the
  two ``src`` folders; the process checks that ``gankit`` was imported from there (not from the venv's
  editable install). The environment is otherwise the same, with one intra-op thread for both.
* ``checkpoints/latest.safetensors``: same tensor names, every tensor ``torch.equal`` (dtype and shape
  included), same JSON metadata but for the version string. ``metrics.jsonl``: same records, same keys, equal
  values but for the wall-clock rates.
* Resume: a run of the OLD code stopped at step 25 (of 50, by a callback, as Ctrl-C would) continues in the
  NEW code and must end with NEW's uninterrupted checkpoint. (It is not a ``train.steps=25`` run extended to
  50: the cosine schedule and the instance-noise annealing depend on ``train.steps``, so that one differs.)

Runs are cached per module, OLD and NEW of a case train in parallel (one thread each), nothing trains twice.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

# The last commit before trainer.py was refactored into the new training engine: the behaviour to reproduce
# exactly. Move it forward only for a commit whose training behaviour is the accepted reference.
GOLDEN_BASE = "a6d75b0"

ROOT = Path(__file__).resolve().parents[1]
WALL_CLOCK = ("steps_per_s", "samples_per_s")  # metrics.jsonl fields measured with a clock; all others must match
META_UNCHECKED = ("gankit_version",)  # checkpoint metadata that may change without a change of behaviour
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
STEPS, STOP_AT = 50, 25

COMMON = [f"train.steps={STEPS}", "train.log_every=10", f"train.checkpoint_every={STOP_AT}", "train.plot_every=1000",
          "eval.every=0", "train.device=cpu", "seed=3"]
CASES = {  # name: (recipe, overrides); the recipe's own settings that matter are repeated, so none is lost silently
    "mlp-grid25": ("grid25", ["data.n=2000", "data.batch_size=64", "model.g_hidden=32", "model.d_hidden=32",
                              "loss.penalty=r1", "loss.penalty_every=4", "model.pack=2", "train.reuse_fake=true",
                              "train.ema=0.999", "train.lr_schedule=cosine", "train.d_steps=2",
                              "loss.historical_averaging=0.01", "loss.feature_matching=0.1"]),
    "dcgan-digits": ("digits-dcgan", ["data.name=digits", "data.image_size=16", "data.batch_size=32",
                                      "model.family=dcgan", "model.conditional=true", "model.z_dim=16",
                                      "model.g_hidden=8", "model.d_hidden=8", "train.instance_noise=0.1",
                                      'train.augment="color,translation,cutout"', "train.ema=0.99"]),
    "wgan-gp-ring8": ("ring8", ["data.n=2000", "data.batch_size=64", "model.g_hidden=32", "model.d_hidden=32",
                                "loss.name=wgan-gp", "train.d_steps=5", "train.ema=0.999"]),
}

SCRIPT = r"""
import json, sys
from pathlib import Path
spec = json.loads(sys.argv[1])
import gankit
where = Path(gankit.__file__).resolve()
assert where.is_relative_to(Path(spec["src"]).resolve()), f"gankit imported from {where}, not {spec['src']}"

class StopAt:
    def on_step_end(self, trainer):
        if trainer.step == spec["stop_at"]:
            trainer.request_stop()

if spec["resume"]:
    gankit.train(resume=True, run_dir=spec["run_dir"], steps=spec["steps"], progress=False)
else:
    recipe, overrides = spec["case"]
    gankit.train(recipe, run_dir=spec["run_dir"], overrides=overrides, progress=False,
                 callbacks=[StopAt()] if spec["stop_at"] else [])
"""


def extract_base(dest: Path) -> Path:
    """``src`` of GOLDEN_BASE, unpacked under ``dest``; skips when this is no git checkout holding that commit."""
    if shutil.which("git") is None:
        pytest.skip("golden test: git is not installed, so the code at GOLDEN_BASE cannot be extracted")
    git = ["git", "-C", str(ROOT)]
    if subprocess.run([*git, "rev-parse", "--git-dir"], capture_output=True).returncode:
        pytest.skip(f"golden test: {ROOT} is not a git checkout")
    if subprocess.run([*git, "cat-file", "-e", f"{GOLDEN_BASE}^{{commit}}"], capture_output=True).returncode:
        pytest.skip(f"golden test: commit {GOLDEN_BASE} is not in this clone (shallow?); git fetch --unshallow")
    archive = subprocess.run([*git, "archive", GOLDEN_BASE, "src/gankit"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    package = dest / "src" / "gankit"
    assert list((package / "configs").glob("*.toml")) and list((package / "metrics" / "weights").glob("*.safetensors"))
    return dest / "src"


class Runs:
    """Run folders by (code, case), trained on first request; the requests of one call train in parallel."""

    def __init__(self, root: Path):
        self.root = root
        self.src = {"old": extract_base(root / "base"), "new": ROOT / "src"}
        self.done: dict[tuple[str, str], Path] = {}

    def get(self, *jobs: tuple[str, str]) -> list[Path]:
        """``jobs``: (kind, case); kind: old | new | old-stopped (OLD, stopped at step STOP_AT of STEPS) |
        resumed (a copy of old-stopped, resumed to STEPS by NEW). Returns their run folders."""
        todo = {job: self.start(*job) for job in dict.fromkeys(jobs) if job not in self.done}
        for job, (process, run_dir) in todo.items():
            self.done[job] = self.wait(process, run_dir)
        return [self.done[job] for job in jobs]

    def start(self, kind: str, case: str) -> tuple[subprocess.Popen, Path]:
        run_dir = self.root / "runs" / f"{kind}-{case}"
        code = "old" if kind.startswith("old") else "new"
        if kind == "resumed":
            shutil.copytree(self.done["old-stopped", case], run_dir)
        recipe, overrides = CASES[case]
        spec = {"src": str(self.src[code]), "run_dir": str(run_dir), "case": (recipe, COMMON + overrides),
                "resume": kind == "resumed", "steps": STEPS, "stop_at": STOP_AT if kind == "old-stopped" else None}
        env = {**os.environ, **THREADS, "PYTHONPATH": str(self.src[code]), "PYTHONDONTWRITEBYTECODE": "1"}
        process = subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(spec)], env=env, cwd=self.root,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return process, run_dir

    @staticmethod
    def wait(process: subprocess.Popen, run_dir: Path) -> Path:
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"{run_dir.name}: training took over 120 s (a few seconds expected)")
        assert process.returncode == 0, f"{run_dir.name}: training failed:\n{output[-4000:]}"
        return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("golden"))


def checkpoint(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "latest.safetensors"


def assert_same_checkpoint(old: Path, new: Path) -> None:
    a, b = load_file(checkpoint(old)), load_file(checkpoint(new))
    assert a.keys() == b.keys(), f"tensor names: only in {old.name}: {sorted(a.keys() - b.keys())}, " \
                                 f"only in {new.name}: {sorted(b.keys() - a.keys())}"
    differ = [k for k in sorted(a) if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape
              or not torch.equal(a[k], b[k])]
    if differ:
        x, y = a[differ[0]], b[differ[0]]
        gap = f", max |diff| {(x.double() - y.double()).abs().max():.3g}" if x.shape == y.shape else ""
        pytest.fail(f"{len(differ)} of {len(a)} tensors differ, first {differ[0]!r}: {old.name} "
                    f"{x.dtype}{list(x.shape)} vs {new.name} {y.dtype}{list(y.shape)}{gap}")
    ma, mb = metadata(checkpoint(old)), metadata(checkpoint(new))
    assert ma == mb, f"checkpoint metadata differs: {old.name} {ma} vs {new.name} {mb}"


def metadata(path: Path) -> dict:
    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    return {k: {f: x for f, x in v.items() if f not in META_UNCHECKED} if isinstance(v, dict) else v
            for k, v in meta.items()}


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_trains_as_golden_base(runs, case):
    old, new = runs.get(("old", case), ("new", case))
    assert metadata(checkpoint(new))["gankit"]["step"] == STEPS
    assert_same_checkpoint(old, new)
    a, b = records(old), records(new)
    assert len(a) == len(b) >= STEPS // 10, f"metrics.jsonl: {len(a)} records (OLD) vs {len(b)} (NEW)"
    for ra, rb in zip(a, b):
        assert ra.keys() == rb.keys(), f"step {ra.get('step')}: fields {sorted(ra)} (OLD) vs {sorted(rb)} (NEW)"
        for key in [k for k in ra if k not in WALL_CLOCK]:  # as JSON text: NaN equals NaN, nested records compare
            assert json.dumps(ra[key]) == json.dumps(rb[key]), \
                f"metrics.jsonl step {ra.get('step')}, {key}: {ra[key]!r} (OLD) vs {rb[key]!r} (NEW)"


@pytest.mark.slow
@pytest.mark.parametrize("case", ["mlp-grid25", "dcgan-digits"])
def test_resumes_golden_base_checkpoint(runs, case):
    stopped, new = runs.get(("old-stopped", case), ("new", case))
    assert metadata(checkpoint(stopped))["gankit"]["step"] == STOP_AT
    (resumed,) = runs.get(("resumed", case))
    assert_same_checkpoint(resumed, new)

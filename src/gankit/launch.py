"""``gankit train ... --nproc N``: the same command under torchrun, in a session of its own, with Ctrl-C passed
once to each training process so they stop together with a checkpoint."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import GankitError

EXIT_INTERRUPTED = 130


def launch(nproc: int, argv: list[str]) -> int:
    """``gankit train ... --nproc N``: the same command under torchrun, which starts and watches N processes."""
    if nproc < 1:
        raise GankitError(f"--nproc {nproc}: expected 1 or more processes")
    i = next(k for k, a in enumerate(argv) if a == "--nproc" or a.startswith("--nproc="))
    argv = argv[:i] + argv[i + (1 if "=" in argv[i] else 2):]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "gankit", *argv]
    import signal
    import subprocess

    # torchrun runs in a session of its own, so the terminal's Ctrl-C reaches this process alone, which passes it
    # once to each training process: they stop together after the step and checkpoint. (Signalled directly,
    # torchrun would send a second SIGINT, which aborts, and end with a traceback.) A second Ctrl-C ends them all
    # at once; checkpoints are written atomically, so the last one survives.
    proc = subprocess.Popen(command, start_new_session=True)
    interrupts = 0

    def forward(signum, frame):
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        workers = child_pids(proc.pid)
        for pid in workers or [proc.pid]:  # no /proc (not Linux): torchrun passes it on
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    previous = signal.signal(signal.SIGINT, forward)
    previous_term = signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
    try:
        code = proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    if interrupts > 1:
        raise KeyboardInterrupt  # main() says the job was aborted and the last checkpoint is intact
    return EXIT_INTERRUPTED if interrupts and code == 0 else code


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc (Linux); [] where there is none."""
    found = []
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # the field after the command name is the parent's id
            found.append(int(entry))
    return found

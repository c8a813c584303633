import os
import sys

from .cli import main
from .distributed import launched

code = main()
if launched():
    # A torchrun worker whose work is done (its run folder written atomically, the process group destroyed) leaves
    # without the interpreter's teardown: there, under load, a rank still aborted now and then (SIGABRT, "terminate
    # called without an active exception": a C++ thread torn down by a static destructor, pytorch#190489) after
    # main had returned, twice in about 90 two-process runs here, both while another training loaded the CPU;
    # torchrun then reports the whole job as failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)

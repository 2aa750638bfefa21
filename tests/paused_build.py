"""`qa build` that stops at one stage of the build, for the crash tests to SIGKILL it there.

    QA_TEST_PAUSE_AT=write python -m tests.paused_build PATHS... --index DIR

When the build reaches the stage named by $QA_TEST_PAUSE_AT it prints
`QA_TEST_PAUSE_AT: paused at <stage>` on stderr and sleeps $QA_TEST_PAUSE_SECONDS
(default 600). The hook is `build_index(on_stage=...)`; the package itself reads
neither variable.
"""

from __future__ import annotations

import functools
import os
import sys
import time

import qa.indexing
from qa.cli import main


def pause(stage: str, at: str, seconds: float) -> None:
    if stage == at:
        os.write(2, f"QA_TEST_PAUSE_AT: paused at {stage}\n".encode())
        time.sleep(seconds)


if __name__ == "__main__":
    at = os.environ.get("QA_TEST_PAUSE_AT", "")
    seconds = float(os.environ.get("QA_TEST_PAUSE_SECONDS") or 600)
    qa.indexing.build_index = functools.partial(
        qa.indexing.build_index, on_stage=functools.partial(pause, at=at, seconds=seconds)
    )
    sys.exit(main(["build", *sys.argv[1:]]))

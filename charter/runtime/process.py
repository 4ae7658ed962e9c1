"""Leaving a short-lived process that used a Temporal client.

The SDK's native (Rust) runtime keeps threads that can still touch the interpreter while
CPython finalises, which now and then aborts a process that already did its work with
"Fatal Python error: PyGILState_Release" (temporalio/sdk-python#300). A CLI command that
printed its result and then exits -6 is a wrong answer for scripts and CI, so entry points
flush their output and leave without interpreter teardown. Only for process entry points:
library code and tests call the functions that return instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe must not block exit
            stream.flush()
    os._exit(code)

# Copyright (c) 2026 medslip-monai contributors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""User-facing errors: one short last line (what went wrong, with which file, what to do), the traceback only when
asked for (``--verbose`` on a command line, or the environment variable ``MEDSLIP_VERBOSE=1``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["VERBOSE_FLAG", "error_line", "report", "root_cause", "run_command", "verbose_requested"]

VERBOSE_FLAG = "--verbose"
#: Messages of the exceptions that MONAI and Ignite wrap around the real one.
_WRAPPERS = ("Failed to evaluate", "Failed to instantiate", "applying transform", "Component to instantiate")


def verbose_requested(argv: Sequence[str] = ()) -> bool:
    """True when ``--verbose`` is among ``argv`` or ``MEDSLIP_VERBOSE`` is set to a true value."""
    return VERBOSE_FLAG in argv or os.environ.get("MEDSLIP_VERBOSE", "").lower() in ("1", "true", "yes")


def root_cause(error: BaseException) -> BaseException:
    """The error that started it all: ``error`` with MONAI's and Ignite's wrapping exceptions (``Failed to evaluate
    ConfigExpression``, ``applying transform``, ...) peeled off."""
    while error.__cause__ is not None and str(error).lstrip().startswith(_WRAPPERS):
        error = error.__cause__
    return error


def error_line(error: BaseException) -> str:
    """``error: <message of the root cause>`` on one line."""
    cause = root_cause(error)
    text = cause.args[0] if isinstance(cause, KeyError) and cause.args else cause  # no quotes around a KeyError
    message = " ".join(str(text).split()) or type(cause).__name__
    plain = (ValueError, KeyError, FileNotFoundError, FileExistsError, IsADirectoryError, PermissionError)
    kind = "" if isinstance(cause, plain) else f"{type(cause).__name__}: "
    return f"error: {kind}{message}"


def report(line: str) -> None:
    """Print ``line`` to standard error whatever its encoding can hold (other characters escaped)."""
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    print(line.encode(encoding, "backslashreplace").decode(encoding), file=sys.stderr)


def run_command(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> Any:
    """Run a command-line ``main(argv)``. An exception ends the program with :func:`error_line` as its last line
    and exit status 1; with ``--verbose`` (removed from ``argv``) or ``MEDSLIP_VERBOSE=1`` it propagates with its
    traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = verbose_requested(argv)
    try:
        return main([text for text in argv if text != VERBOSE_FLAG])
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:
        if verbose:
            raise
        report(f"{error_line(error)} ({VERBOSE_FLAG} shows the traceback)")
        sys.exit(1)

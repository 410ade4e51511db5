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
"""What the bundle needs from ``python -m monai.bundle run``'s command line: booleans parsed strictly, override ids
checked against the configs, and user-facing errors as one short last line.

MONAI's command line passes ``--overlays false`` as the string ``"false"`` (which Python reads as true) and sets a
misspelt ``--batchsize 4`` as a new, unused id. Each full config's ``initialize`` calls :func:`command_line_checks`,
and every boolean setting is read through :func:`flag`.
"""

from __future__ import annotations

import ast
import difflib
import logging
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from medslip_monai.errors import error_line, report, verbose_requested

__all__ = ["MONAI_RUN_ARGUMENTS", "command_line_checks", "flag", "unknown_overrides"]

logger = logging.getLogger(__name__)

#: Arguments of ``monai.bundle run`` itself, not config ids.
MONAI_RUN_ARGUMENTS = frozenset(
    {
        "config_file",
        "meta_file",
        "logging_file",
        "args_file",
        "tracking",
        "workflow_type",
        "workflow_name",
        "run_id",
        "init_id",
        "final_id",
        "properties_path",
    }
)
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def flag(value: Any, name: str = "setting") -> bool:
    """A boolean setting parsed strictly: a bool, 0 or 1, or ``true``/``false``/``1``/``0`` in any case; anything
    else raises ``ValueError`` naming the setting."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false (or 1 / 0), got {value!r}")


def _ids(node: Any, prefix: str = "") -> Iterator[str]:
    """Every id of a config: ``a``, ``a#b``, ``a#0``, ... (keys written with ``#`` or ``::`` kept as ids, ``+``
    merge keys without their ``+``)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        key = str(key).lstrip("+").replace("::", "#")
        yield prefix + key
        yield from _ids(value, f"{prefix}{key}#")


def _command_line_overrides(argv: Sequence[str]) -> dict[str, Any]:
    """``{key: text}`` of a ``monai.bundle run`` command line (``--a-b`` read as ``a_b``, as Fire does), with the
    keys of an ``--args_file`` added."""
    pairs: dict[str, Any] = {}
    pending = None
    for token in argv:
        if token.startswith("--"):
            key, _, value = token[2:].partition("=")
            key = key.replace("-", "_")
            pending = None if value else key
            pairs[key] = value
        elif pending is not None:
            pairs[pending], pending = token, None
    if pairs.get("args_file"):
        from monai.bundle import ConfigParser

        pairs = {**ConfigParser.load_config_file(pairs["args_file"]), **pairs}
    return pairs


def _config_files(text: Any) -> Any:
    """The ``config_file`` argument as MONAI takes it: a path, a list literal or comma-separated paths."""
    if isinstance(text, str):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    return text


def unknown_overrides(config_files: Any, overrides: Sequence[str]) -> list[str]:
    """The override ids that name nothing in ``config_files`` (as MONAI reads them: one path, a list or
    comma-separated paths, JSON or YAML): a misspelt id would otherwise be set and never read. An id is known when
    it, or the component it adds an argument to (its parent), is in a config."""
    from monai.bundle import ConfigParser

    known = set(_ids(ConfigParser.load_config_files(config_files)))
    problems = []
    for override in overrides:
        key = override.replace("::", "#")
        if key in MONAI_RUN_ARGUMENTS or key in known or (key.rpartition("#")[0] in known):
            continue
        top = {name for name in known if "#" not in name}
        guess = difflib.get_close_matches(key.split("#")[0], sorted(top), n=1)
        problems.append(f"--{override}" + (f" (did you mean --{guess[0]}?)" if guess else ""))
    return problems


def _short_error_hook(kind: type, error: BaseException, trace: Any) -> None:
    if isinstance(error, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    report(f"{error_line(error)} (--verbose true shows the traceback)")


def command_line_checks(verbose: Any = False) -> None:
    """Called by each config's ``initialize``; does something only under ``python -m monai.bundle``: unless
    ``verbose`` (``--verbose true`` or ``MEDSLIP_VERBOSE=1``), makes an uncaught error end the run with one short
    last line naming its root cause instead of a traceback in which MONAI's wrappers bury it, and refuses override
    ids that no config file names (``ValueError`` listing them, with the closest known id). A command line the
    check cannot read is let through with a warning."""
    if not sys.argv or not sys.argv[0].replace("\\", "/").endswith("monai/bundle/__main__.py"):
        return
    sys.excepthook = sys.__excepthook__ if flag(verbose, "verbose") or verbose_requested() else _short_error_hook
    overrides = _command_line_overrides(sys.argv[1:])
    try:
        unknown = unknown_overrides(_config_files(overrides.get("config_file", "")), [key for key in overrides if key])
    except Exception as error:  # the check must never stop a run that MONAI itself accepts
        logger.warning("cannot check the setting names of this command line (%s); continuing", error_line(error))
        return
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}: no config file names them; check the spelling")

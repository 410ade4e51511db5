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
"""Result files: JSON that stays valid (NaN and infinity written as null), Markdown tables, files replaced
atomically, provenance, and output folders that one run at a time writes into and that never silently lose an
earlier run's results."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "OutputFolder",
    "format_cell",
    "json_safe",
    "markdown_table",
    "provenance",
    "write_json",
    "write_report",
    "write_text",
]


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity), at any depth, replaced by None."""
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a reader sees the old file or the whole new one, never a
    part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def write_json(path: str | os.PathLike, record: Any) -> Path:
    """Write ``record`` as indented JSON (non-finite floats as null; other objects as their ``str``), atomically."""
    return write_text(path, json.dumps(json_safe(record), indent=1, default=str))


def provenance(model_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """Where results come from: the model file and its sha256 (when given), the package version and the time."""
    from medslip_monai import __version__

    record: dict[str, Any] = {"medslip_monai": __version__, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if model_file is not None and Path(model_file).is_file():
        digest = hashlib.sha256()
        with open(model_file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        record.update(model_file=str(Path(model_file).resolve()), model_sha256=digest.hexdigest())
    return record


def format_cell(value: Any, digits: int = 4) -> str:
    """A table cell: floats with ``digits`` decimals (``nan`` for missing), ``[a, b]`` intervals, text as is."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "nan" if value is None or math.isnan(value) else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"[{format_cell(value[0], digits)}, {format_cell(value[1], digits)}]"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> list[str]:
    """Lines of a Markdown table (cells through :func:`format_cell`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(format_cell(cell, digits) for cell in row) + " |" for row in rows]


def write_report(
    output_dir: str | os.PathLike, record: Mapping, markdown: Sequence[str], name: str = "metrics"
) -> Path:
    """Write ``<output_dir>/<name>.json`` (the record) and ``<name>.md`` (the lines), each atomically; returns the
    folder."""
    folder = Path(output_dir)
    write_json(folder / f"{name}.json", record)
    write_text(folder / f"{name}.md", "\n".join(markdown) + "\n")
    return folder


class OutputFolder:
    """The folder a run writes its results into, held by one run at a time.

    :meth:`claim` creates the folder (an unwritable one fails here, before any work), takes its lock (an exclusive
    ``flock`` on ``.medslip-run.lock``, held until :meth:`release` or the process's end, so a second run into the
    folder is refused while the first lives and a crashed run never blocks the next) and refuses a folder holding an
    earlier run's ``results`` unless ``overwrite``. The run writes into :attr:`staging`; :meth:`commit` then
    replaces the earlier results (if any) by the staged ones, so a failed run leaves the earlier results as they
    were and no stale file (an overlay of an earlier input) survives a successful one.

    Args:
        folder: the output folder.
        results: names of the files and folders a run writes (e.g. ``findings.json``, ``overlays``).
        overwrite: replace an earlier run's results. Defaults to False.
    """

    LOCK = ".medslip-run.lock"
    STAGING = ".medslip-partial"

    def __init__(self, folder: str | os.PathLike, results: Sequence[str], overwrite: bool = False) -> None:
        self.folder = Path(folder)
        self.results = list(results)
        self.overwrite = overwrite
        self._lock_handle: int | None = None

    @property
    def lock(self) -> Path:
        """The lock file."""
        return self.folder / self.LOCK

    @property
    def staging(self) -> Path:
        """Where the run writes until :meth:`commit`."""
        return self.folder / self.STAGING

    def claim(self) -> None:
        """Take the folder for this run (see the class)."""
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            while True:
                handle = os.open(self.lock, os.O_CREAT | os.O_RDWR)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(handle)
                    raise FileExistsError(
                        f"output folder {self.folder} is in use by another run (it holds {self.lock}); wait for it "
                        "or choose another output folder"
                    ) from None
                if self.lock.exists() and os.fstat(handle).st_ino == os.stat(self.lock).st_ino:
                    break
                os.close(handle)  # the file was replaced while we waited: lock the new one
        except FileExistsError:
            raise
        except OSError as e:
            raise PermissionError(f"cannot write into the output folder {self.folder}: {e.strerror or e}") from None
        self._lock_handle = handle
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        earlier = [name for name in self.results if (self.folder / name).exists()]
        if earlier and not self.overwrite:
            self.release()
            raise FileExistsError(
                f"output folder {self.folder} holds an earlier run's results ({', '.join(earlier)}); choose another "
                "output folder or pass --overwrite true to replace them"
            )
        shutil.rmtree(self.staging, ignore_errors=True)  # left by a run that died
        self.staging.mkdir()

    def commit(self) -> None:
        """Replace the earlier results by the staged ones."""
        for name in self.results:
            staged, target = self.staging / name, self.folder / name
            if staged.exists():
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                os.replace(staged, target)

    def release(self) -> None:
        """Drop the staging folder and the lock, if this run holds it."""
        if self._lock_handle is None:
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        self.lock.unlink(missing_ok=True)
        os.close(self._lock_handle)  # closing drops the flock
        self._lock_handle = None

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
"""Result files: JSON that stays valid (NaN and infinity written as null) and Markdown tables, written together."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["json_safe", "write_json", "markdown_table", "format_cell", "write_report"]


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity), at any depth, replaced by None."""
    if isinstance(value, Mapping):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | os.PathLike, record: Any) -> Path:
    """Write ``record`` as indented JSON (non-finite floats as null; other objects as their ``str``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(record), indent=1, default=str))
    return path


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
    """Write ``<output_dir>/<name>.json`` (the record) and ``<name>.md`` (the lines); returns the folder."""
    folder = Path(output_dir)
    write_json(folder / f"{name}.json", record)
    (folder / f"{name}.md").write_text("\n".join(markdown) + "\n")
    return folder

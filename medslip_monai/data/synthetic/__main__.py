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
"""Command line of the synthetic world::

python -m medslip_monai.data.synthetic --out DIR --num 2000 --seed 0
"""

from __future__ import annotations

from medslip_monai.data.synthetic.cli import main
from medslip_monai.errors import run_command

__all__ = ["main"]

if __name__ == "__main__":
    run_command(main)

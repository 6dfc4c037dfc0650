"""Install detectron2 into the current interpreter from registry packages only.

detectron2 is not published on PyPI. On a GPU cluster users install the official detectron2 from
source (with its C++/CUDA ops); when such an installation is importable, this script leaves it
alone. Otherwise it installs the official detectron2 v0.5 Python package from the PyPI source
distribution ``detectron2-cdo==0.5``, which carries that package file for file but not the C++
sources, so its own ``setup.py`` cannot build (measured in shared/reference/dependencies.md).

What this script changes, and nothing else:
  1. ``setup.py`` is replaced by a minimal one: no C++ extension, the model-zoo YAML configs
     shipped as package data (the upstream setup.py looks for a top-level ``configs/`` that the
     sdist lacks), no install requirements (the project's lock file pins them).
  2. ``detectron2/_C.py`` is added: upstream modules import ``detectron2._C`` at import time.
     Everything this project uses runs on torchvision ops (RoIAlign, NMS); the missing compiled
     ops (deformable conv, rotated boxes, the fast COCO evaluator) raise a clear error when used.

Usage: ``python envs/install_detectron2.py [--cache DIR] [--force]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST_NAME = "detectron2-cdo"
SDIST_VERSION = "0.5"
SDIST_FILE = "detectron2_cdo-0.5.tar.gz"
SDIST_SHA256 = "53c9e79e9cc943e80419c588ea44b5479507a8628ed14a4e06bd093e29311b18"
MARKER = "DCL_REGISTRY_BUILD"

SETUP_PY = f'''\
# Written by the DCL reproduction's envs/install_detectron2.py: the official detectron2 v0.5
# Python package, without its C++ extension. See that script for why.
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="0.5+registry",
    packages=find_packages(include=("detectron2", "detectron2.*")),
    package_data={{"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]}},
    python_requires=">=3.7",
)
'''

C_STUB = f'''\
"""Stand-in for detectron2's compiled extension ({MARKER}).

This detectron2 was installed from the PyPI sdist detectron2-cdo==0.5 without C++ sources.
Operators built on torchvision (RoIAlign, NMS) work; the compiled-only ones do not.
"""


def get_compiler_version():
    return "none (detectron2 installed without its C++ extension)"


def get_cuda_version():
    return "none (detectron2 installed without its C++ extension)"


def has_cuda():
    return False


def __getattr__(name):
    raise AttributeError(
        f"detectron2._C.{{name}} is unavailable: this detectron2 was installed without its C++ "
        "extension (deformable conv, rotated boxes and the fast COCO evaluator need it); "
        "install the official detectron2 from source to use them"
    )
'''


def installed_detectron2() -> str | None:
    """Return a description of an importable detectron2, or None."""
    spec = importlib.util.find_spec("detectron2")
    if spec is None or spec.origin is None:
        return None
    c_stub = Path(spec.origin).parent / "_C.py"
    kind = "registry build" if c_stub.exists() and MARKER in c_stub.read_text() else "official"
    return f"{kind} at {Path(spec.origin).parent}"


def fetch_sdist(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / SDIST_FILE
    if not target.exists():
        # `--no-binary :all:` because the registry serves only the sdist; no deps: the lock file
        # pins what detectron2 needs at run time.
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", f"{SDIST_NAME}=={SDIST_VERSION}", "-d", str(cache)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not target.exists():
            sys.exit(f"error: could not download {SDIST_NAME}=={SDIST_VERSION} from the package "
                     f"registry (is it reachable?):\n{result.stderr.strip()[-2000:]}")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"error: {target} has sha256 {digest}, expected {SDIST_SHA256}; delete it and retry")
    return target


def build_and_install(sdist: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="detectron2-build-") as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / "detectron2_cdo-0.5"
        (src / "setup.py").write_text(SETUP_PY)
        (src / "detectron2" / "_C.py").write_text(C_STUB)
        # The upstream egg-info would advertise the upstream name and requirements.
        shutil.rmtree(src / "detectron2_cdo.egg-info", ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                        "--no-build-isolation", "--quiet", str(src)], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path(".cache/sdists"),
                        help="where the downloaded sdist is kept (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="reinstall the registry build even if detectron2 is importable")
    args = parser.parse_args(argv)

    found = installed_detectron2()
    if found and not args.force:
        print(f"detectron2 already installed ({found}); leaving it as it is")
        return 0
    build_and_install(fetch_sdist(args.cache))
    print(f"detectron2 installed: {installed_detectron2()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

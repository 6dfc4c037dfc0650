"""Install the OpenMMLab stack (mmengine 0.10.7, mmcv 2.1.0 with ops, mmdet 3.3.0, mmseg 1.2.2).

mmcv publishes no wheel for recent torch, and its 2.1.0 sdist does not build against torch
2.14: torch's headers require C++20 while mmcv's setup.py hard-codes ``-std=c++17``
(shared/reference/dependencies.md). This script, run with the project venv's interpreter:

  1. installs the pins of ``envs/requirements-mmdet.txt`` without dependencies (mmengine and
     mmcv would otherwise pull the GUI ``opencv-python``; torch is never touched);
  2. builds mmcv 2.1.0 from its PyPI sdist (sha256-pinned) with ``-std=c++20`` instead of
     ``-std=c++17``, ``MMCV_WITH_OPS=1``, ``MAX_JOBS`` (default 2), without build isolation,
     against the interpreter's torch (CUDA ops too when CUDA is available or ``FORCE_CUDA=1``),
     and keeps the wheel under ``--cache`` keyed by mmcv version, torch version, Python tag and
     ops kind, so a second run installs in seconds (about 10 minutes on 2 cores otherwise;
     default cache ``~/.cache/dcl-reproduction/wheels``, shared by every checkout);
  3. installs that wheel and ``mmdet==3.3.0`` without dependencies (``mmsegmentation==1.2.2``,
     pure Python, is one of the pins of step 1);
  4. checks that ``mmcv.ops`` (RoIAlign, nms), mmdet and mmseg import with the pinned versions.

It does nothing when the stack already imports with the pinned versions and the pins of
``requirements-mmdet.txt`` are installed (``--force`` rebuilds). Any failure is one line on
stderr, naming the build log where there is one.

Usage: ``python envs/install_mmdet.py [--cache DIR] [--force]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-mmdet.txt"
MMCV_VERSION = "2.1.0"
MMCV_SDIST = f"mmcv-{MMCV_VERSION}.tar.gz"
MMCV_SHA256 = "d387bcab66b467479b6660310e23746cfc79c6e57acf04094680adb499a5cd3f"
MMDET_VERSION = "3.3.0"
MMENGINE_VERSION = "0.10.7"
MMSEG_VERSION = "1.2.2"  # pinned in requirements-mmdet.txt
# Outside the checkout, so fresh clones (CI) reuse a wheel built once on the machine; the key
# of each wheel names what it was built against (see wheel_key).
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dcl-reproduction" / "wheels"
# setup.py passes -std=c++17 in exactly these many places (CPU, MPS and CUDA branches).
CXX17_FLAGS = 3

CHECK = f"""
import mmcv, mmengine, mmdet, mmseg
from mmcv.ops import RoIAlign, nms
v = (mmcv.__version__, mmengine.__version__, mmdet.__version__, mmseg.__version__)
assert v == ({MMCV_VERSION!r}, {MMENGINE_VERSION!r}, {MMDET_VERSION!r}, {MMSEG_VERSION!r}), v
"""


def fail(message: str) -> NoReturn:
    sys.exit("error: " + " ".join(message.split()))


def pip(*args: str, quiet: bool = True) -> None:
    cmd = [sys.executable, "-m", "pip", *args] + (["-q"] if quiet else [])
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        fail(f"pip {' '.join(args)} failed: {last}")


def pinned_requirements() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                fail(f"{REQUIREMENTS}: {line!r} is not pinned with ==")
            pins[name.strip()] = version.strip()
    return pins


def pins_installed() -> bool:
    for name, version in pinned_requirements().items():
        try:
            if importlib.metadata.version(name) != version:
                return False
        except importlib.metadata.PackageNotFoundError:
            return False
    return True


def stack_works() -> bool:
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True).returncode == 0


def wheel_key() -> str:
    """Cache folder name: what the compiled ops depend on."""
    import torch

    cuda = torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1"
    tag = sysconfig.get_config_var("SOABI") or f"py{sys.version_info.major}{sys.version_info.minor}"
    safe_torch = re.sub(r"[^A-Za-z0-9.]+", "_", torch.__version__)
    return f"mmcv-{MMCV_VERSION}-torch-{safe_torch}-{tag}-{'cuda' if cuda else 'cpu'}"


def fetch_sdist(cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / MMCV_SDIST
    if not target.exists():
        pip("download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
            f"mmcv=={MMCV_VERSION}", "-d", str(cache))
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != MMCV_SHA256:
        fail(f"{target} has sha256 {digest}, expected {MMCV_SHA256}; delete it and retry")
    return target


def patch_setup(src: Path) -> None:
    setup = src / "setup.py"
    text = setup.read_text()
    if text.count("-std=c++17") != CXX17_FLAGS:
        fail(f"{setup} is not the mmcv {MMCV_VERSION} setup.py this patch expects")
    setup.write_text(text.replace("-std=c++17", "-std=c++20"))


def build_wheel(cache: Path) -> Path:
    """Return the cached mmcv wheel for this torch, building it first if needed."""
    folder = cache / wheel_key()
    found = sorted(folder.glob("mmcv-*.whl")) if folder.is_dir() else []
    if found:
        print(f"mmcv wheel from the cache: {found[-1]}")
        return found[-1]
    sdist = fetch_sdist(cache)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "build.log"
    env = {**os.environ, "MMCV_WITH_OPS": "1", "MAX_JOBS": os.environ.get("MAX_JOBS", "2")}
    print(f"building mmcv {MMCV_VERSION} with ops (about 10 minutes on 2 cores); log: {log}",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="mmcv-build-") as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / f"mmcv-{MMCV_VERSION}"
        patch_setup(src)
        out = Path(tmp) / "wheel"
        with open(log, "w") as f:
            code = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                 "-w", str(out), str(src)], stdout=f, stderr=subprocess.STDOUT, env=env).returncode
        wheels = list(out.glob("mmcv-*.whl"))
        if code != 0 or len(wheels) != 1:
            fail(f"building mmcv {MMCV_VERSION} failed (exit {code}); see {log}")
        # Copy under a temporary name then rename: an interrupted copy is never taken as a wheel.
        partial = folder / (wheels[0].name + ".partial")
        shutil.copyfile(wheels[0], partial)
        final = folder / wheels[0].name
        os.replace(partial, final)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="where the sdist and the built mmcv wheel are kept (default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="reinstall even if the stack already imports with the pinned versions")
    args = parser.parse_args(argv)

    if not args.force and pins_installed() and stack_works():
        print(f"mmcv {MMCV_VERSION}, mmengine {MMENGINE_VERSION}, mmdet {MMDET_VERSION}, "
              f"mmseg {MMSEG_VERSION} already installed; leaving them as they are")
        return 0
    if importlib.util.find_spec("torch") is None:  # mmcv builds against it
        fail("torch is not installed in this interpreter; install envs/requirements-cpu.txt first")
    pip("install", "--no-deps", "-r", str(REQUIREMENTS))
    wheel = build_wheel(args.cache)
    pip("install", "--no-deps", "--force-reinstall", str(wheel))
    pip("install", "--no-deps", f"mmdet=={MMDET_VERSION}")
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        fail(f"the installed stack does not import: {last}")
    print(f"installed mmcv {MMCV_VERSION} (ops), mmengine {MMENGINE_VERSION}, mmdet {MMDET_VERSION}, "
          f"mmseg {MMSEG_VERSION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

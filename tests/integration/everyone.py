"""A Python that other users can run, for tests that drop to another uid.

A Python installed under root's 0700 home (pyenv, as in CI) still starts for another user, but
cannot import its own standard library; the system Python of the same minor version, with our
venv's site-packages and the repository on PYTHONPATH, can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.support import REPO

__all__ = ["python_for_everyone"]


def python_for_everyone() -> tuple[str, str]:
    """(python, PYTHONPATH) that uid 65534 can run with every dependency; else skip loudly."""
    if shutil.which("setpriv") is None:
        pytest.skip("SKIPPED LOUDLY: no setpriv (util-linux) to run code as another user")
    path = f"{REPO}:{sysconfig.get_paths()['purelib']}"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for python in (f"/usr/bin/python{version}", f"/usr/local/bin/python{version}", sys.executable):
        # As root, a Python finds its stdlib where it was installed: that must be readable.
        if not os.path.exists(python) or os.path.realpath(python).startswith("/root/"):
            continue
        probe = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c",
             "import secrets, msgspec, zmq, loguru, aiohttp, multiprocess, supervisor"],
            env={**os.environ, "PYTHONPATH": path}, cwd="/", capture_output=True, timeout=60,
            check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return python, path
    pytest.skip(f"SKIPPED LOUDLY: no Python {version} that other users can run")

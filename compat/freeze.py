"""Freeze the resolution of one Airflow version of the matrix: ``compat/constraints-<version>.txt``.

The official constraints files cannot be downloaded here, so each file is a resolution made once
with uv as PyPI stood at the end of that Airflow release's day (``--exclude-newer``); only packages
whose floor in pyproject.toml came out later are taken as of their floor's day. Run it again when
pyproject.toml's dependencies change::

    python -m compat.freeze                 # every version
    python -m compat.freeze --airflow 3.0.6 # one
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile

from compat.versions import (
    PYTHON_VERSION,
    REPO,
    VERSIONS,
    constraints_file,
    end_of_day,
    later_floors,
    requirements,
)


def uv() -> list[str]:
    """uv, from the project's .venv (installed there with pip when missing)."""
    try:
        import uv as uv_package  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "uv"], check=True)
    return [sys.executable, "-m", "uv"]


def freeze(airflow: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".in", prefix="matrix-") as spec:
        spec.write("\n".join(requirements(airflow)) + "\n")
        spec.flush()
        command = [
            *uv(),
            "pip",
            "compile",
            spec.name,
            "--quiet",
            "--python-version",
            PYTHON_VERSION,
            "--exclude-newer",
            end_of_day(VERSIONS[airflow]),
            *[f"--exclude-newer-package={name}={end_of_day(day)}" for name, day in later_floors(airflow).items()],
            "--no-annotate",
            "--custom-compile-command",
            f"python -m compat.freeze --airflow {airflow}",
            "--output-file",
            str(constraints_file(airflow)),
        ]
        subprocess.run(command, check=True, cwd=REPO)
    print(f"{airflow}: {constraints_file(airflow).relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--airflow", choices=sorted(VERSIONS), help="one version (default: all)")
    args = parser.parse_args()
    for airflow in [args.airflow] if args.airflow else VERSIONS:
        freeze(airflow)
    return 0


if __name__ == "__main__":
    sys.exit(main())

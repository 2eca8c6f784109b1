"""Import every module of the package and run every example DAG file, in one version's environment.

Run with that environment's Python (``compat.run`` does): prints one JSON line
``{"modules": n, "dag_files": n, "dags": [...], "failures": [...], "warnings": [...]}`` where
``warnings`` are the deprecation warnings (FutureWarning, which Airflow's moved import paths raise)
raised at a line of the package or of an example DAG.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import runpy
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="outreach-compat-"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    import airflow  # noqa: F401  (Airflow's own start-up warnings are not the package's)

    import airflow_provider_outreach

    failures: list[str] = []
    caught: list[str] = []
    names = [airflow_provider_outreach.__name__] + [
        info.name for info in pkgutil.walk_packages(airflow_provider_outreach.__path__, "airflow_provider_outreach.")
    ]
    files = sorted((REPO / "example_dags").glob("*.py"))
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always", FutureWarning)
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:
                failures.append(f"{name}: {traceback.format_exc(limit=-3)}")
        for path in files:
            try:
                runpy.run_path(str(path), run_name=f"example_{path.stem}")
            except Exception:
                failures.append(f"{path.name}: {traceback.format_exc(limit=-3)}")
    sys.path.insert(0, str(REPO))
    from tests.dagtest import dag_bag

    bag = dag_bag(str(REPO / "example_dags"))  # as Airflow's DAG processor parses them
    dags = sorted(bag.dag_ids)
    failures += [f"{Path(path).name}: {error.strip().splitlines()[-1]}" for path, error in bag.import_errors.items()]
    ours = (str(REPO / "airflow_provider_outreach"), str(REPO / "example_dags"))
    for warning in recorded:  # a deprecated path another package imports is that package's matter
        if issubclass(warning.category, FutureWarning) and warning.filename.startswith(ours):
            caught.append(f"{warning.filename}:{warning.lineno}: {warning.message}")
    print(
        json.dumps(
            {"modules": len(names), "dag_files": len(files), "dags": dags, "failures": failures, "warnings": caught}
        )
    )
    return 1 if failures or caught else 0


if __name__ == "__main__":
    sys.exit(main())

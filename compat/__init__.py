"""The Airflow version matrix: which versions are tested, how their environments are pinned and built.

``python -m compat.freeze`` writes one constraints file per version (once, kept in the repository);
``python -m compat.run`` (``make compat``) builds each version's environment from it and runs the checks.
"""

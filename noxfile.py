"""Developer sessions: tests, lint, bench. CI runs `lint` and `tests`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

# A CPU build of torch; installed first so that the project's `torch>=2.3` is satisfied
# without pulling a multi-GB CUDA build.
TORCH = "torch==2.13.0"


def _install(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[dev,text]")


@nox.session
def tests(session: nox.Session) -> None:
    """The default suite (excludes tests marked slow and the benchmarks)."""
    _install(session)
    session.install("-e", ".[surprise,cornac,ray]")  # the adapters' and Ray executor's tests
    session.run("pytest", *session.posargs, env={"RAY_USAGE_STATS_ENABLED": "0"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "bench", "predictors", "tests", "examples", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the package (numpy's stubs are strict: a few lines carry a typed ignore)."""
    _install(session)
    session.install("mypy>=1.10", "pandas-stubs")
    session.run("mypy", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """pytest-benchmark cases under tests/benchmarks (slow; run deliberately)."""
    _install(session)
    session.run(
        "pytest",
        "tests/benchmarks",
        "-m",
        "benchmark",
        "--benchmark-only",
        "--benchmark-json=results/benchmarks.json",
        *session.posargs,
    )

"""The memory check: a run that cannot fit stops before any model, naming the option."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench import memory
from bench.cli import main
from bench.errors import ConfigError
from tests.conftest import tiny_rows


def test_parse_size_units_and_bad_values() -> None:
    assert memory.parse_size("1000") == 1000
    assert memory.parse_size("512M") == 512 * 2**20
    assert memory.parse_size("1.5g") == int(1.5 * 2**30)
    for bad in ("lots", "", "-3G", "0"):
        with pytest.raises(ConfigError, match="RATINGBENCH_MEMORY_LIMIT"):
            memory.parse_size(bad)


def test_check_fits_names_the_largest_need_and_its_option() -> None:
    needs = [
        memory.Need("the events fitting may see", 300 * 2**20, "--sample-users"),
        memory.Need("the test batches", 900 * 2**20, "--chunk-size"),
    ]
    memory.check_fits(needs, None)  # the platform does not say: no check
    memory.check_fits(needs, 4 * 2**30)  # 1.2 GB of 4 GB: half is allowed
    with pytest.raises(ConfigError, match="largest is the test batches: lower --chunk-size"):
        memory.check_fits(needs, 2 * 2**30)


def test_check_fits_counts_one_copy_per_worker() -> None:
    needs = [memory.Need("the test batches", 900 * 2**20, "--chunk-size")]
    memory.check_fits(needs, 4 * 2**30, memory.Copies(2))  # 1.8 GB of 4 GB: within half
    with pytest.raises(ConfigError) as err:
        memory.check_fits(
            needs, 4 * 2**30, memory.Copies(3, "--jobs 2: the driver and each worker", "--jobs")
        )
    said = str(err.value)
    assert "held 3 times on this machine (--jobs 2" in said
    assert "lower --chunk-size, or a smaller --jobs" in said


def test_a_parallel_run_checks_memory_for_every_worker(tmp_path, monkeypatch) -> None:
    """Memory for two copies of the run's arrays: a serial run goes ahead, the same run with
    --jobs 2 (the driver and two workers: three copies) stops before anything is written."""
    from bench import memory as mem
    from bench.plan import Prepared

    csv = tmp_path / "ratings.csv"
    csv.write_text(
        "userId,movieId,rating,timestamp\n"
        + "\n".join(f"{u},{i},{r},{t}" for u, i, r, t in tiny_rows())
        + "\n"
    )
    seen: dict[str, int] = {}
    needs_of = Prepared.memory_needs

    def needs(self, chunk):
        out = needs_of(self, chunk)
        seen["one"] = sum(n.bytes for n in out)
        return out

    monkeypatch.setattr(Prepared, "memory_needs", needs)
    # evaluated after memory_needs: room for exactly two copies within the harness's share
    monkeypatch.setattr(mem, "available_bytes", lambda: int(2 * seen["one"] / mem.HARNESS_SHARE))
    base = ["run", "--ratings", str(csv), "--models", "global-mean"]
    ok = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "serial")])
    assert ok.exit_code == 0, ok.output
    out = tmp_path / "jobs"
    r = CliRunner().invoke(main, [*base, "--jobs", "2", "--out", str(out)])
    assert r.exit_code == 2, r.output
    said = " ".join(r.output.split())
    assert "held 3 times on this machine (--jobs 2" in said and "a smaller --jobs" in said
    assert not out.exists() or not any(out.iterdir())


def test_available_memory_is_read_and_the_variable_overrides_it(monkeypatch) -> None:
    monkeypatch.delenv("RATINGBENCH_MEMORY_LIMIT", raising=False)
    found = memory.available_bytes()
    assert found is None or found > 0
    monkeypatch.setenv("RATINGBENCH_MEMORY_LIMIT", "3G")
    assert memory.available_bytes() == 3 * 2**30


def test_a_run_that_cannot_fit_stops_before_writing_anything(tmp_path, monkeypatch) -> None:
    csv = tmp_path / "ratings.csv"
    csv.write_text(
        "userId,movieId,rating,timestamp\n"
        + "\n".join(f"{u},{i},{r},{t}" for u, i, r, t in tiny_rows())
        + "\n"
    )
    out = tmp_path / "res"
    args = ["run", "--ratings", str(csv), "--models", "global-mean", "--out", str(out)]
    monkeypatch.setenv("RATINGBENCH_MEMORY_LIMIT", "64")  # 64 bytes: nothing fits
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2
    said = " ".join(r.output.split())  # the console wraps long lines
    assert "only 0 MB are available" in said and "lower --" in said
    assert not list(out.glob("*.json")) and not list(out.glob("*.parquet"))
    monkeypatch.setenv("RATINGBENCH_MEMORY_LIMIT", "1G")
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("*.json"))) == 1

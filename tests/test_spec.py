"""Run options declared once (``bench.declare``, ``bench.spec``): every derived form — the CLI's
options, the API's keywords, the results record, ``--resume`` — comes from the fields."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import api
from bench.cli import main
from bench.declare import IgnoredOptions, leaves, resume_changes, section_from_record
from bench.errors import ConfigError
from bench.spec import RunSpec

ROOT = Path(__file__).resolve().parents[1]

#: a ``run_spec`` as the previous version wrote it: flat beside ``source`` and ``split``,
#: ``download`` and ``synthetic`` in the source, ``seed`` in the split
PREVIOUS = {
    "source": {
        "dataset": "synthetic", "ratings": None, "catalog": None, "columns": {}, "sep": None,
        "rating_scale": None, "data_dir": None, "download": False,
        "synthetic": {"n_users": 150, "seed": 3}, "cache": True, "time_unit": None,
        "header": None,
    },
    "split": {
        "min_history": 10, "max_history": 30, "samples_per_user": 5, "sample_users": 2000,
        "seed": 7, "test_targets": 2,
    },
    "models": [{"spec": "bias", "implicit": False, "source": None, "error": None}],
    "protocol": "notebook", "seeds": [0, 1], "reference": "user-mean", "n_resamples": 500,
    "confidence": 0.9, "stats_seed": 0, "ci_method": "percentile", "min_test_users": 5,
    "per_seed": True, "out_dir": "/tmp/somewhere", "chunk_size": 1000, "device": "cpu",
    "embeddings": ["genre", "random"], "embedding_dir": None, "missing_embedding": "zero",
    "blas_threads": None, "check": "full", "save_models": True, "executor": "processes",
    "jobs": 2, "ray_address": None, "torch_threads": 3,
}


def test_every_option_has_one_name_and_the_cli_offers_each_flagged_one() -> None:
    names = [leaf.name for leaf in leaves(RunSpec)]
    assert len(names) == len(set(names))
    text = CliRunner().invoke(main, ["run", "--help"], terminal_width=200).output
    for leaf in leaves(RunSpec):
        if leaf.option.cli:
            assert max(leaf.flags, key=len) in text, leaf.name
            assert leaf.option.help, f"{leaf.name} has no help"
        else:
            assert "--" + leaf.name.replace("_", "-") not in text


def test_a_spec_round_trips_through_its_record() -> None:
    spec = api.make_spec(
        "bias,recent-k:k=3",
        dataset="synthetic",
        users=120,
        data_seed=4,
        protocol="notebook",
        samples_per_user=None,
        seeds="0,2",
        resamples=300,
        embeddings="genre,random",
        blas_threads=None,
        out=Path("elsewhere"),
    )
    record = json.loads(json.dumps(spec.to_dict()))
    assert RunSpec.from_dict(record) == spec
    assert record["stats"]["resamples"] == 300 and record["source"]["users"] == 120


def test_a_record_of_the_previous_version_reads_into_todays_spec() -> None:
    spec = RunSpec.from_dict(PREVIOUS, command=["bench", "run"])
    assert spec.source.offline is True and spec.source.download is False
    assert (spec.source.users, spec.source.data_seed) == (150, 3)
    assert spec.source.synthetic == {"n_users": 150, "seed": 3}
    assert spec.split.split_seed == 7 and spec.split.test_targets == 2
    assert spec.stats.resamples == 500 and spec.stats.per_seed is True
    assert spec.stats.ci_method == "percentile" and spec.stats.confidence == 0.9
    assert spec.execution.executor == "processes" and spec.execution.jobs == 2
    assert spec.execution.blas_threads is None and spec.execution.torch_threads == 3
    assert spec.embedding.embeddings == ("genre", "random")
    assert spec.embedding.missing_embedding == "zero"
    assert spec.output.out == Path("/tmp/somewhere") and spec.output.save_models is True
    assert spec.output.command == ("bench", "run")
    assert spec.seeds == (0, 1) and spec.check == "full" and spec.protocol == "notebook"
    assert [m.label for m in spec.models] == ["bias"]
    # and the split hash covers the same parameters under the same names as before
    assert dict(spec.split.hash_items())["seed"] == 7


def test_one_section_reads_without_the_others() -> None:
    broken = {**PREVIOUS, "models": [{"spec": "missing.py:Nope", "source": {"kind": "file"}}]}
    emb = section_from_record(RunSpec, broken, "embedding")
    assert emb.embeddings == ("genre", "random")
    assert section_from_record(RunSpec, broken, "split").split_seed == 7


def test_protocol_presets_are_the_split_defaults_and_given_options_win() -> None:
    assert api.make_spec("bias", protocol="notebook").split.sample_users == 2000
    assert api.make_spec("bias").split.sample_users is None
    spec = api.make_spec("bias", protocol="notebook", sample_users=50)
    assert spec.split.sample_users == 50
    assert api.make_spec("bias", samples_per_user="all").split.samples_per_user is None
    assert api.make_spec("bias").split.samples_per_user == 5


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        ({"resampels": 300}, "unknown run option resampels (did you mean resamples?)"),
        ({"resamples": 10}, "--resamples must be an integer >= 100, got 10"),
        ({"jobs": 0}, "--jobs must be an integer >= 1, got 0"),
        ({"confidence": 1.5}, "--confidence must be a number in (0.5, 1), got 1.5"),
        ({"missing_embedding": "nope"}, "--missing-embedding must be one of drop, zero, mean"),
        ({"seeds": "a,b"}, "--seeds expects comma-separated integers"),
        ({"seeds": (1, 1)}, "--seeds has repeated values: [1, 1]"),
        ({"blas_threads": "x"}, "--blas-threads must be an integer >= 0, got 'x'"),
        ({"users": 3}, "--users must be an integer >= 10, got 3"),
        ({"protocol": "other"}, "--protocol must be one of default, notebook, got 'other'"),
        ({"jobs": 2, "executor": "serial"}, "--jobs 2 needs worker processes"),
    ],
)
def test_a_bad_choice_names_its_option(choices: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        api.make_spec("bias", **choices)
    assert message in str(e.value)


def test_resume_accepts_only_the_options_that_say_where_and_takes_the_jobs_ones_together() -> None:
    spec = RunSpec.from_dict(PREVIOUS)
    moved = resume_changes(RunSpec, spec, {"data_dir": "/data", "offline": False})
    assert moved.source.data_dir == Path("/data") and moved.source.offline is False
    assert moved.execution == spec.execution and moved.stats == spec.stats
    serial = resume_changes(RunSpec, spec, {"jobs": 1})
    assert serial.execution.executor == "serial" and serial.execution.jobs == 1
    assert serial.execution.torch_threads == 3  # not a --resume option: kept
    with pytest.raises(IgnoredOptions, match="would be ignored: --resamples, --seeds"):
        resume_changes(RunSpec, spec, {"resamples": 300, "seeds": "1"})
    with pytest.raises(ConfigError, match="--jobs must be an integer >= 1, got 0") as bad:
        resume_changes(RunSpec, spec, {"jobs": 0})  # resumable, but a bad value
    assert not isinstance(bad.value, IgnoredOptions)


def test_the_spec_is_frozen() -> None:
    spec = api.make_spec("bias")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stats.resamples = 5  # type: ignore[misc]


PROBE_FIELD = '''
    probe_level: int = run_option(
        3, Integer(1), help="A probe option added by the test.", was=("old_probe",)
    )
'''


@pytest.fixture(scope="module")
def tree_with_a_new_option(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package with one field added to the statistics section: no other file
    touched."""
    root = tmp_path_factory.mktemp("newoption")
    for name in ("bench", "predictors", "datasets"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    spec = root / "bench" / "spec.py"
    text = spec.read_text()
    anchor = "    per_seed: bool = run_option(\n"
    assert text.count(anchor) == 1
    spec.write_text(text.replace(anchor, PROBE_FIELD.lstrip("\n") + anchor))
    return root


def _python(root: Path, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_field_added_to_a_section_reaches_cli_api_results_and_resume(
    tree_with_a_new_option: Path, tmp_path: Path
) -> None:
    root = tree_with_a_new_option
    help_text = _python(
        root,
        "from click.testing import CliRunner; from bench.cli import main; "
        "print(CliRunner().invoke(main, ['run', '--help'], terminal_width=200).output)",
    )
    assert "--probe-level" in help_text and "A probe option added by the test." in help_text
    out = tmp_path / "results"
    path = _python(
        root,
        "from bench import api; "
        f"r = api.run('user-mean,bias', dataset='synthetic', users=60, resamples=200, "
        f"probe_level=5, out={str(out)!r}); print(r.path)",
    ).strip().splitlines()[-1]
    doc = json.loads(Path(path).read_text())
    assert doc["run_spec"]["stats"]["probe_level"] == 5
    # the CLI reads it too, and refuses a bad value by its flag
    bad = _python(
        root,
        "from click.testing import CliRunner; from bench.cli import main; "
        "r = CliRunner().invoke(main, ['run', '--models', 'bias', '--probe-level', '0']); "
        "print(r.exit_code, r.output)",
    )
    assert bad.startswith("2") and "--probe-level must be an integer >= 1, got 0" in bad
    # --resume rebuilds the recorded value (interrupted: bias not finished)
    doc["status"] = "incomplete"
    doc["models"] = [m for m in doc["models"] if m["key"] != "bias"]
    Path(path).write_text(json.dumps(doc))
    resumed = _python(
        root,
        "from bench import api; "
        f"r = api.resume({path!r}); print(r.doc['run_spec']['stats']['probe_level'], "
        "r.complete, [m['key'] for m in r.doc['models']])",
    )
    assert resumed.split()[0] == "5" and "True" in resumed and "'bias'" in resumed
    refused = _python(
        root,
        "from click.testing import CliRunner; from bench.cli import main; "
        f"r = CliRunner().invoke(main, ['run', '--resume', {path!r}, '--probe-level', '4']); "
        "print(r.exit_code, r.output)",
    )
    assert refused.startswith("2") and "would be ignored: --probe-level" in refused

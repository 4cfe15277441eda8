"""Model specs on the command line, and the registry's messages."""

from __future__ import annotations

import sys

import pytest

from predictors.registry import REGISTRY, ModelSpec, create, parse_models, parse_spec


def test_parse_spec_with_options():
    s = parse_spec("recent-k:k=10")
    assert s == ModelSpec("recent-k", {"k": 10})
    assert s.label == "recent-k:k=10"
    b = parse_spec("bias:item_damping=2.5:refit=false")
    assert b.options == {"item_damping": 2.5, "refit": False}


def test_parse_models_all_and_dedup():
    specs = parse_models("all,user-mean")
    assert [s.name for s in specs] == list(REGISTRY)


def test_unknown_model_lists_known_ones_and_suggests():
    with pytest.raises(ValueError, match=r"Did you mean 'user-mean'.*Known models: global-mean"):
        parse_spec("usermean")


def test_unknown_option_lists_accepted():
    with pytest.raises(ValueError, match=r"unknown option .kk. for model .recent-k..*Accepted: k"):
        create("recent-k:kk=3")


def test_malformed_option():
    with pytest.raises(ValueError, match="not key=value"):
        parse_spec("recent-k:10")


@pytest.mark.parametrize(
    "text, option",
    [
        ("recent-k:k=5:k=6", "k"),
        ("recent-k:k=5:k=5", "k"),
        ("bias:item-damping=1:item_damping=2", "item_damping"),
    ],
)
def test_a_repeated_option_is_an_error_naming_it(text, option):
    with pytest.raises(ValueError, match=rf"model option '{option}' is given twice in '{text}'"):
        parse_spec(text)
    with pytest.raises(ValueError, match="given twice"):
        parse_models(f"user-mean,{text}")


def test_a_repeated_option_of_a_plugin_is_an_error(tmp_path):
    plugin = tmp_path / "twice_model.py"
    plugin.write_text(
        "class Twice:\n"
        "    name = 'twice'\n"
        "    def __init__(self, *, k=1):\n"
        "        self.k = k\n"
        "    def fit(self, train):\n"
        "        return self\n"
        "    def predict(self, q):\n"
        "        return q.user * 0.0 + 3.0\n"
        "    def get_config(self):\n"
        "        return {'k': self.k}\n"
    )
    with pytest.raises(ValueError, match="model option 'k' is given twice"):
        parse_spec(f"{plugin}:Twice:k=2:k=3")


def test_create_takes_the_specs_options_only():
    # the run's seed and device travel in train.context, never as constructor arguments
    assert create("recent-k:k=2").get_config() == {"k": 2}
    with pytest.raises(ValueError, match="unknown option 'seed'"):
        create("recent-k:seed=3")


def test_registry_imports_no_torch():
    import subprocess

    code = (
        "import sys, predictors.registry as r; "
        "[r.get_class(n) for n in ('global-mean','user-mean','recent-k','bias')]; "
        "import bench.cli; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_registry_is_the_one_summary_of_a_built_in():
    """A built-in's line in `bench list` is its registry entry, never also on its class
    (two copies drift); listing them imports no model module."""
    import subprocess

    from predictors.registry import describe, get_class

    assert [name for name, _ in describe()] == list(REGISTRY)
    assert all(summary for _, summary in describe())
    for name in REGISTRY:
        cls = get_class(name)
        assert "summary" not in vars(cls), name
    code = (
        "import sys, predictors.registry as r; r.describe(); r.origins(); "
        "print(sorted(m for m in sys.modules if m.startswith('predictors.') and "
        "m.rpartition('.')[2] in ('baselines', 'knn', 'mf', 'attention', 'transformer')), "
        "'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] False"

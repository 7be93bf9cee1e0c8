"""The ASDF parameter files hold exactly the pipelines' current defaults.

The step specs carry the best-measured settings; the files are what
``export_config`` writes for them, so a changed default without a
regenerated file fails here. A pipeline's defaults include the settings
of official steps it gives as a parameter reference would
(``get_config_from_reference``); regenerate with
``P.from_config_section(P.get_config_from_reference(None)).export_config(path)``.
"""

from pathlib import Path

import asdf
import pytest

from jwst_soss_custom.pipeline import SossDetector1Pipeline, SossSpec2Pipeline, SossTso3Pipeline

FILES = Path(__file__).resolve().parents[1] / "parameter_files"


def _plain(value):
    """Tuples from the spec and lists from ASDF compare equal."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("filename", "pipeline"),
    [
        ("soss_detector1.asdf", SossDetector1Pipeline),
        ("soss_spec2.asdf", SossSpec2Pipeline),
        ("soss_tso3.asdf", SossTso3Pipeline),
    ],
)
def test_parameter_file_matches_the_defaults(filename, pipeline):
    with asdf.open(FILES / filename) as af:
        assert af["class"] == f"{pipeline.__module__}.{pipeline.__name__}"
        pars = {k: _plain(v) for k, v in af["parameters"].items()}
        steps = {s["name"]: (s["class"], {k: _plain(v) for k, v in s["parameters"].items()}) for s in af["steps"]}
    defaults = pipeline.from_config_section(pipeline.get_config_from_reference(None)).get_pars()
    step_defaults = defaults.pop("steps")
    assert pars == {k: _plain(v) for k, v in defaults.items()}
    assert set(steps) == set(pipeline.step_defs)
    for name, (cls, values) in steps.items():
        step_class = pipeline.step_defs[name]
        assert cls == f"{step_class.__module__}.{step_class.__name__}"
        assert values == {k: _plain(v) for k, v in step_defaults[name].items()}

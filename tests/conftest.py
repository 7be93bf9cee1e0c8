"""Shared fixtures: simulated SOSS exposures written once per test session."""

import os

import pytest

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def tiny_exposure(tmp_path_factory):
    """The simulator's tiny preset (two segments), written to disk once."""
    from jwst_soss_custom.datasets import simulate

    return simulate(tmp_path_factory.mktemp("tiny"), preset="tiny", seed=42)


@pytest.fixture(scope="session")
def tiny_truth(tiny_exposure):
    """Truth of the tiny exposure (injected signals)."""
    from jwst_soss_custom.datasets import load_truth

    return load_truth(tiny_exposure.truth_file)


@pytest.fixture(scope="session")
def tiny_asn(tiny_exposure):
    """Level-2 association of the tiny exposure's segments, as asn_from_list makes it."""
    from jwst.associations import asn_from_list
    from jwst.associations.lib.rules_level2_base import DMSLevel2bBase

    folder = tiny_exposure.segment_files[0].parent
    asn = asn_from_list.asn_from_list(
        [p.name for p in tiny_exposure.segment_files],
        rule=DMSLevel2bBase,
        product_name="jw01366001001_04101_00001_nis",
    )
    path = folder / "spec2_asn.json"
    _, serialized = asn.dump()
    path.write_text(serialized)
    return path

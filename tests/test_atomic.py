"""Files are written whole or not at all (atomic_path)."""

import pytest

from jwst_soss_custom._base.atomic import atomic_path


def test_an_interrupted_write_leaves_nothing_under_the_final_name(tmp_path):
    final = tmp_path / "product_whtlt.ecsv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(final) as temporary:
            temporary.write_text("# %ECSV 1.0\npartial")
            assert temporary.name == final.name and temporary.parent != tmp_path
            raise KeyboardInterrupt  # the run is stopped half-way
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_old_product_stays_until_the_new_one_is_whole(tmp_path):
    final = tmp_path / "product_x1dints.fits"
    final.write_text("old")
    with atomic_path(final) as temporary:
        temporary.write_text("new")
        assert final.read_text() == "old"
    assert final.read_text() == "new"
    # A temporary folder left by a killed run is replaced by the next write.
    stale = tmp_path / f".{final.name}.part"
    stale.mkdir()
    (stale / final.name).write_text("killed")
    with atomic_path(final) as temporary:
        temporary.write_text("newer")
    assert final.read_text() == "newer" and not stale.exists()

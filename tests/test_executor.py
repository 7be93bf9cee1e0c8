"""The executor interface, picklable work units and the chunk contract."""

import functools
import io
import logging
import pickle

import numpy as np
import pytest
from stdatamodels.jwst import datamodels

from jwst_soss_custom.badpix import SossBadpixStep
from jwst_soss_custom.chunks import ChunkContext
from jwst_soss_custom.extract import SossExtractStep
from jwst_soss_custom.oneoverf import SossOneOverFStep
from jwst_soss_custom.parallel import LocalExecutor, advance, can_fork, check_picklable
from jwst_soss_custom.pipeline.soss_spec2 import SossSpec2Pipeline
from jwst_soss_custom.source import ExposureSource, load_exposure
from jwst_soss_custom.statistics import cube_statistics, exposure_statistics


def _square_plus(offset, x):
    return x * x + offset


def test_local_executor_maps_in_order_serially_and_over_processes():
    work = functools.partial(_square_plus, 1)
    items = list(range(7))
    assert LocalExecutor(1).map(work, items) == [x * x + 1 for x in items]
    assert LocalExecutor(2).map(work, items) == [x * x + 1 for x in items]


def _count(x):
    advance(x)
    return x


@pytest.mark.parametrize("processes", [1, 2])
def test_progress_adds_up_the_work_every_worker_reports(processes):
    seen = []
    items = [3, 5, 7, 11]
    assert LocalExecutor(processes).map(_count, items, progress=seen.append) == items
    # The last report is the total; the ones before never exceed it.
    assert seen[-1] == sum(items)
    assert seen == sorted(seen)
    # Without a progress callback, advance is a no-op.
    assert LocalExecutor(processes).map(_count, items) == items


class _Terminal(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_line_only_on_a_terminal_and_ends_with_the_work():
    from jwst_soss_custom.timing import Progress

    terminal = _Terminal(True)
    progress = Progress(100, "soss_spec2", stream=terminal, quiet_seconds=0.0)
    progress(0)
    progress(40)
    progress(100)
    text = terminal.getvalue()
    assert "soss_spec2: 0/100 integrations (0 %), ETA --\r" in text
    assert "soss_spec2: 40/100 integrations (40 %), ETA" in text
    assert text.endswith("soss_spec2: 100/100 integrations (100 %), ETA 0 s\n")
    log = _Terminal(False)
    quiet = Progress(100, "soss_spec2", stream=log, quiet_seconds=0.0)
    quiet(40)
    quiet(100)
    assert log.getvalue() == ""
    # A short run says nothing, even on a terminal.
    short = _Terminal(True)
    brief = Progress(100, "soss_spec2", stream=short, quiet_seconds=60.0)
    brief(50)
    brief(100)
    assert short.getvalue() == ""


@pytest.mark.skipif(not can_fork(), reason="serial without fork: nothing is sent")
def test_closures_are_refused_as_work_units():
    offset = 3
    with pytest.raises(TypeError, match="not a picklable work unit"):
        LocalExecutor(2).map(lambda x: x + offset, [1, 2])
    with pytest.raises(TypeError, match="not a picklable work unit"):
        check_picklable(lambda x: x)


def test_file_source_pickles_as_its_paths_and_reads_the_same(tiny_exposure):
    source = ExposureSource(tiny_exposure.segment_files)
    copy = pickle.loads(pickle.dumps(source))
    assert copy.paths == source.paths and copy.nints == source.nints
    a, b = source.read(3, 9, rows=slice(40, 60)), copy.read(3, 9, rows=slice(40, 60))
    for name in ("data", "err", "dq"):
        np.testing.assert_array_equal(a[name], b[name])
    # The statistics band by band over two processes equal those of one pass.
    two = exposure_statistics(source, rows_per_band=32, executor=LocalExecutor(2))
    one = exposure_statistics(source, rows_per_band=256)
    for name in ("deep", "err", "sigma", "count", "empty"):
        np.testing.assert_array_equal(getattr(two, name), getattr(one, name))


def test_source_of_models_stays_in_its_process(tiny_exposure):
    model = datamodels.CubeModel(str(tiny_exposure.segment_files[0]))
    source = ExposureSource([model])
    assert source.paths is None
    with pytest.raises(TypeError, match="models in memory cannot be sent"):
        pickle.dumps(source)
    model.close()


def test_spec2_work_unit_is_picklable(tiny_asn):
    pipeline = SossSpec2Pipeline()
    source = ExposureSource(tiny_asn)
    from jwst_soss_custom.pipeline.soss_spec2 import _ChunkGroups

    cube, _ = load_exposure(tiny_asn)
    work = _ChunkGroups(pipeline, source, cube_statistics(cube), {}, 2)
    check_picklable(work)
    back = pickle.loads(pickle.dumps(work))
    assert back.pipeline.badpix.temporal_window == pipeline.badpix.temporal_window


def test_steps_declare_what_they_need_of_the_time_series():
    assert SossBadpixStep(temporal_window=7).time_halo() == 3
    assert SossBadpixStep(temporal=False).time_halo() == 0
    assert SossOneOverFStep(method="scale-achromatic", smoothing_window=9).time_halo() == 4
    assert SossOneOverFStep(method="solve", smoothing_window=9).time_halo() == 0
    assert SossExtractStep(box_mode="optimize").needs_whole_series()
    assert not SossExtractStep().needs_whole_series()


def test_context_prepared_once_and_handed_on(tiny_exposure, caplog):
    """prepare_exposure fills the cache once; a second chunk only reuses it."""
    cube, _ = load_exposure(tiny_exposure.segment_files)
    context = ChunkContext(cube_statistics(cube))
    raw = context.statistics
    step = SossBadpixStep()
    step.prepare_exposure(context, cube)
    cleaned = context.statistics
    assert cleaned is not raw and set(context.cache) == {"soss_badpix"}
    # The next chunk starts from the exposure's statistics and the same cache.
    again = ChunkContext(raw, slice(0, 5), context.cache)
    step.prepare_exposure(again, cube)
    assert again.statistics is cleaned
    assert "nints=" in repr(again) and "array" not in repr(again)
    with caplog.at_level(logging.INFO):
        out = step.run(cube, again)
    assert out.meta.cal_step.soss_badpix == "COMPLETE"


def test_statistics_over_spawned_workers_need_nothing_from_the_parent(tiny_exposure):
    """Fresh interpreters (as a cluster's workers) reopen the files from the paths."""
    source = ExposureSource(tiny_exposure.segment_files)
    spawned = exposure_statistics(
        source, rows_per_band=128, executor=LocalExecutor(2, start_method="spawn")
    )
    here = exposure_statistics(source, rows_per_band=128)
    for name in ("deep", "err", "sigma", "count", "empty"):
        np.testing.assert_array_equal(getattr(spawned, name), getattr(here, name))
    with pytest.raises(ValueError, match="start_method"):
        LocalExecutor(2, start_method="thread")


def test_spec2_work_unit_runs_in_a_fresh_interpreter(tiny_asn, tmp_path):
    """The chunk groups of soss_spec2 sent to spawned workers give the in-process products."""
    from jwst_soss_custom.chunks import MemoryBudget
    from jwst_soss_custom.pipeline.soss_spec2 import CHUNK_STEPS, _ChunkGroups

    pipeline = SossSpec2Pipeline()
    source = ExposureSource(tiny_asn)
    stats = exposure_statistics(source)
    cache = pipeline._prepare_exposure(stats, source.segments[0].model)
    halo = sum(getattr(pipeline, name).time_halo() for name in CHUNK_STEPS)
    budget = MemoryBudget(1.0, source.nints, source.frame_shape)
    groups = pipeline._plan(source, budget, halo)
    assert len(groups) == 2
    here = LocalExecutor(1).map(_ChunkGroups(pipeline, source, stats, cache, halo), groups)
    there = LocalExecutor(2, start_method="spawn").map(
        _ChunkGroups(pipeline, source, stats, cache, halo, scratch=str(tmp_path)), groups
    )
    for (models, _), (paths, _) in zip(here, there, strict=True):
        for model, scratch in zip(models, paths, strict=True):
            with datamodels.open(scratch.path) as back:
                for a, b in zip(model.spec, back.spec, strict=True):
                    for column in ("FLUX", "FLUX_ERROR", "DQ", "WAVELENGTH"):
                        np.testing.assert_array_equal(a.spec_table[column], b.spec_table[column])

"""Ramp levels of the simulator: raw ``uncal`` segments, and ``rateints`` made from them.

At both levels the exposure is simulated read by read (`detector`), with
CRDS-format references of the simulated detector written to ``refs/``
(`crds_refs`). ``uncal`` writes the raw ramps as the archive delivers them
(``Level1bModel``, uint16 DN). ``rateints`` puts the same ramps, a block of
integrations at a time, through the official ``calwebb_detector1`` steps
(dq_init, saturation, superbias, refpix, linearity, dark_current, jump or
the simulator's own jump flags, and ``ramp_fit`` with optimal weighting) and
writes the rateints segments ramp fitting makes.
"""

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from stdatamodels.jwst import datamodels
from stdatamodels.jwst.datamodels import dqflags

from jwst_soss_custom._base.geometry import NX
from jwst_soss_custom.datasets import crds_refs
from jwst_soss_custom.datasets.config import segment_sizes
from jwst_soss_custom.datasets.detector import (
    CR_SHARES,
    CorrelatedNoise,
    cosmic_ray_charge,
    draw_cosmic_ray_events,
    integration_ramp,
    make_detector_maps,
)
from jwst_soss_custom.datasets.noise import BadPixels
from jwst_soss_custom.datasets.writer import build_segment, save_atomic, segment_filename
from jwst_soss_custom.parallel import LocalExecutor

log = logging.getLogger(__name__)

__all__ = ["ramp_segments", "ramp_model", "BLOCK", "FIT_BLOCK", "correlated_cds_variance"]

#: Integrations simulated together: bounds memory and sets the length of
#: each continuous readout-noise series.
BLOCK = 4
#: Integrations put through the official steps together (each step run has a
#: fixed cost of ~0.2 s, so blocks must not be small; ~1.5 GB at 16).
FIT_BLOCK = 16

#: Loggers quietened while the official steps run on each block.
_PIPELINE_LOGGERS = ("stpipe", "jwst", "stcal", "CRDS")


def _rng(seed, *key):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def correlated_cds_variance(noise, rng):
    """Mean variance (e-^2) the correlated noise adds to a CDS pair after refpix.

    Each frame's mean is removed first, as the reference-pixel step removes
    the per-frame offset of SOSS subarrays.
    """
    if not noise.active or noise.ngroups < 2:
        return 0.0
    reads = noise.draw(rng, 1)[0, :2].astype(np.float64)
    reads -= reads.mean(axis=(1, 2), keepdims=True)
    return float(np.var(reads[1] - reads[0])) + 2.0 * noise.white_variance


def _crop_bad(bad, rows):
    return BadPixels(*(getattr(bad, name)[rows] for name in (
        "hot_rate", "response", "hot_flagged", "hot_unflagged", "dead_flagged",
        "dead_unflagged")))


@contextmanager
def _quiet_pipeline():
    saved = {}
    for name in _PIPELINE_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def ramp_segments(visit, out):
    """Simulate the exposure read by read and write ``uncal`` or ``rateints`` segments.

    Parameters
    ----------
    visit : jwst_soss_custom.datasets.simulate._Visit
        Scene, times, transit, bad pixels, jitter and systematics.
    out : Path
        Output folder; references go to ``out / "refs"``.

    Returns
    -------
    segment_files : list of Path
    truth : dict
        Ramp-level truth: cosmic rays, detector numbers, noise settings.
    references : dict of str to Path
    """
    config = visit.config
    rows = config.rows
    shape = (config.ny, NX)
    reference_mask = visit.scene.reference_mask[rows]
    bad = _crop_bad(visit.bad, rows)
    pink = float(np.hypot(config.pink_correlated, config.pink_uncorrelated)
                 * config.oneoverf_scale)
    noise = CorrelatedNoise(pink, config.acn * config.oneoverf_scale, config.pedestal,
                            config.frame_time, config.ngroups, shape)
    cds_corr = correlated_cds_variance(noise, _rng(config.seed, 4))
    maps = make_detector_maps(config, _rng(config.seed, 5), reference_mask, bad, cds_corr)
    references = crds_refs.write_references(maps, config, out / "refs")
    read_sigma = np.sqrt(maps.read_noise**2 + np.float32(noise.white_variance))
    events = draw_cosmic_ray_events(config, _rng(config.seed, 6), ~reference_mask, config.nints)

    sizes = segment_sizes(config.nints, config.nsegments)
    # Segments are independent (every draw is keyed on the integration), so
    # they go to worker processes; the files do not depend on how many.
    writer = _SegmentWriter(visit, bad, noise, maps, references, read_sigma, events, out)
    segment_files = LocalExecutor(min(config.processes, len(sizes))).map(
        writer, range(1, len(sizes) + 1)
    )

    truth = {
        "cosmic_rays": events,
        "detector": {
            "gain": maps.gain,
            "read_noise_e": maps.read_noise,
            "readnoise_cds_dn": maps.readnoise_cds,
            "dark_e_per_s": maps.dark,
            "bias": maps.bias,
            "nonlinearity": maps.nonlinearity,
            "full_well_dn": maps.full_well,
            "ktc_e": maps.ktc,
            "correlated_cds_variance_e2": cds_corr,
            "pink_sigma_e": pink,
            "acn_sigma_e": config.acn * config.oneoverf_scale,
            "pedestal_sigma_e": config.pedestal,
        },
    }
    return segment_files, truth, references


@dataclass
class _SegmentWriter:
    """Simulate and write one segment's ramps (a picklable work unit).

    Called with a segment number (from 1); returns the path written.
    """

    visit: object
    bad: object
    noise: CorrelatedNoise
    maps: object
    references: dict
    read_sigma: np.ndarray
    events: dict
    out: Path

    def __call__(self, seg):
        config, visit, bad, maps = self.visit.config, self.visit, self.bad, self.maps
        rows, shape = config.rows, (config.ny, NX)
        reference_mask = visit.scene.reference_mask[rows]
        sizes = segment_sizes(config.nints, config.nsegments)
        first = 1 + sum(sizes[: seg - 1])
        last = first + sizes[seg - 1] - 1
        writer = (_UncalSegment if config.level == "uncal" else _RateintsSegment)(
            config, visit.times, seg, len(sizes), first, last, self.references, maps
        )
        for start in range(first - 1, last, BLOCK):
            stop = min(start + BLOCK, last)
            correlated = self.noise.draw(_rng(config.seed, 3, start), stop - start)
            raw = np.empty((stop - start, config.ngroups) + shape, dtype=np.uint16)
            for k, i in enumerate(range(start, stop)):
                photo = visit.illumination(i)[rows] * bad.response
                hits = _select(self.events, i, i + 1)
                cr = cosmic_ray_charge(hits, shape, config.ngroups) if hits["y"].size else None
                raw[k] = integration_ramp(photo, maps, config, _rng(config.seed, 1, i),
                                          correlated[k], cr, reference_mask, self.read_sigma)
            writer.add(start - (first - 1), raw, _select(self.events, start, stop))
        path = writer.save(self.out)
        log.info("wrote %s (integrations %d-%d of %d)", path.name, first, last, config.nints)
        return path


def ramp_model(config, times, reads, segment_number, segment_total, first):
    """A `RampModel` of reads, as Detector1 makes of an ``uncal`` file on opening it.

    Parameters
    ----------
    config : SimConfig
    times : dict
        Integration times of the exposure.
    reads : ndarray
        (nints, ngroups, ny, nx) reads (DN), any numeric type.
    segment_number, segment_total : int
    first : int
        1-based exposure index of the first integration.

    Returns
    -------
    `~stdatamodels.jwst.datamodels.RampModel`
        float32 data, empty pixel and group DQ, the uncal metadata and
        ``int_times``.
    """
    last = first + reads.shape[0] - 1
    uncal = build_segment(config, {"data": np.zeros((1, 1, 1, 1), np.uint16)}, times,
                          segment_number, segment_total, first, last, product="uncal")
    model = datamodels.RampModel(
        data=reads.astype(np.float32),
        pixeldq=np.zeros(reads.shape[2:], dtype=np.uint32),
        groupdq=np.zeros(reads.shape, dtype=np.uint8),
    )
    model.update(uncal)
    model.int_times = uncal.int_times
    uncal.close()
    return model


def _select(events, start, stop):
    """Events of integrations ``start`` to ``stop - 1`` (events sorted by integration)."""
    lo, hi = np.searchsorted(events["integration"], [start, stop])
    return {key: value[lo:hi] for key, value in events.items()}


class _UncalSegment:
    """Collects the raw reads of one segment and writes it as a ``Level1bModel``."""

    def __init__(self, config, times, seg, total, first, last, references, maps):
        self.config, self.times = config, times
        self.seg, self.total, self.first, self.last = seg, total, first, last
        self.data = np.empty((last - first + 1, config.ngroups, config.ny, NX), dtype=np.uint16)

    def add(self, offset, raw, events):
        self.data[offset : offset + raw.shape[0]] = raw

    def save(self, out):
        model = build_segment(self.config, {"data": self.data}, self.times, self.seg,
                              self.total, self.first, self.last, product="uncal")
        return save_atomic(model, out / segment_filename(self.config, self.seg, "uncal"))


class _RateintsSegment:
    """Ramp-fits blocks of raw reads with the official steps and writes a ``rateints``."""

    def __init__(self, config, times, seg, total, first, last, references, maps):
        self.config, self.times = config, times
        self.seg, self.total, self.first, self.last = seg, total, first, last
        self.references = references
        n = last - first + 1
        self.arrays = {key: np.empty((n, config.ny, NX), dtype=np.float32)
                       for key in ("data", "err", "var_poisson", "var_rnoise")}
        self.arrays["dq"] = np.empty((n, config.ny, NX), dtype=np.uint32)
        # Jumps the simulator flags itself: charge above 5x the CDS noise.
        self.threshold = 5.0 * maps.readnoise_cds * maps.gain
        self.steps = crds_refs.detector1_overrides(references)
        self.fit_overrides = dict(self.steps["ramp_fit"])
        self.steps["gain_scale"]["skip"] = True
        self.steps["ramp_fit"]["skip"] = True
        if config.jump_detection == "truth":
            self.steps["jump"]["skip"] = True
        self._queue = []

    def add(self, offset, raw, events):
        """Queue a block of raw reads; fit when `FIT_BLOCK` integrations are queued."""
        self._queue.append((offset, raw, events))
        queued = sum(r.shape[0] for _, r, _ in self._queue)
        end = offset + raw.shape[0] + self.first - 1
        if queued >= FIT_BLOCK or end == self.last:
            first_offset = self._queue[0][0]
            raws = np.concatenate([r for _, r, _ in self._queue])
            merged = {key: np.concatenate([e[key] for _, _, e in self._queue])
                      for key in events}
            self._queue = []
            self._fit(first_offset, raws, merged)

    def _fit(self, offset, raw, events):
        from jwst.pipeline import Detector1Pipeline
        from jwst.ramp_fitting import RampFitStep

        first = self.first + offset
        model = ramp_model(self.config, self.times, raw, self.seg, self.total, first)
        cache = Path(self.references["mask"]).parent / "crds_cache"
        with crds_refs.offline_crds(cache), _quiet_pipeline():
            ramp = Detector1Pipeline.call(model, steps=self.steps, configure_log=False)
            if self.config.jump_detection == "truth":
                self._flag_jumps(ramp, events, first - 1)
            _, cube = RampFitStep.call(ramp, configure_log=False, **self.fit_overrides)
        n = raw.shape[0]
        for key in self.arrays:
            self.arrays[key][offset : offset + n] = getattr(cube, key)
        for m in (model, ramp, cube):
            m.close()

    def _flag_jumps(self, ramp, events, first_index):
        """Set JUMP_DET where a simulated cosmic ray adds more than the threshold."""
        ny, nx = self.threshold.shape
        jump = dqflags.group["JUMP_DET"]
        for dy, dx, share in CR_SHARES:
            y = events["y"].astype(np.int64) + dy
            x = events["x"].astype(np.int64) + dx
            g = events["group"].astype(np.int64)
            keep = (y >= 0) & (y < ny) & (x >= 0) & (x < nx) & (g > 0)
            y, x, g = y[keep], x[keep], g[keep]
            big = share * events["charge"][keep] > self.threshold[y, x]
            k = events["integration"][keep][big] - first_index
            ramp.groupdq[k, g[big], y[big], x[big]] |= jump

    def save(self, out):
        model = build_segment(self.config, self.arrays, self.times, self.seg, self.total,
                              self.first, self.last)
        return save_atomic(model, out / segment_filename(self.config, self.seg))


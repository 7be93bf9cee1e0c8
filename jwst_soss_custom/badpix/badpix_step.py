"""stpipe Step: find and replace bad pixels of SOSS rateints."""

import logging

import numpy as np


from jwst_soss_custom._base.dq import FLAGS
from jwst_soss_custom._base.geometry import non_science
from jwst_soss_custom.exposure import check_integrations, empty_integrations
from jwst_soss_custom.stpipe import SossStep

from .badpix import clean_cube, replace_bad_pixels, spatial_outliers

__all__ = ["SossBadpixStep"]

log = logging.getLogger(__name__)

#: Noise of a median of n Gaussian values = sqrt(pi/2) x that of their mean.
_MEDIAN_EFFICIENCY = np.sqrt(np.pi / 2)


class SossBadpixStep(SossStep):
    """Find and replace flagged, spatially and temporally deviant pixels.

    Flagged and non-finite pixels and spatial outliers of the deep frame
    (unflagged hot and dead pixels) are interpolated along rows; temporal
    outliers (cosmic rays, telegraph pixels) take the running median of
    their own time series. Every replaced pixel keeps its flags and gains
    FLUX_ESTIMATED (as jwst's ``pixel_replace`` does); spatial outliers also
    gain HOT or DEAD and DO_NOT_USE, temporal ones OUTLIER and JUMP_DET.
    """

    class_alias = "soss_badpix"

    spec = """
    max_distance = integer(default=4, min=1)  # farthest column used to interpolate a bad pixel
    spatial = boolean(default=True)  # flag outliers of the deep frame (unflagged hot/dead pixels)
    spatial_threshold = float(default=15.0, min=0)  # spatial threshold in local robust sigmas of the deep frame
    spatial_box = integer(default=5, min=3)  # side (pixels) of the local median box
    temporal = boolean(default=True)  # flag outliers along time (cosmic rays, telegraph pixels)
    temporal_threshold = float(default=6.0, min=0)  # temporal threshold in robust sigmas of each pixel
    temporal_window = integer(default=5, min=3)  # running-median width along time (odd, integrations)
    save_plot = boolean(default=False)  # save a diagnostic plot <root>_badpix.png
    suffix = string(default='badpix')  # suffix of the saved model
    """  # noqa: E501

    def time_halo(self):
        """Neighbours each side of a chunk: half the running median of the temporal search."""
        return self.temporal_window // 2 if self.temporal else 0

    def process(self, input_data, context=None):
        """Find and replace bad pixels of a rateints/calints cube.

        Parameters
        ----------
        input_data : str or CubeModel
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            The chunk's context inside soss_spec2.

        Returns
        -------
        CubeModel
        """
        model, stats, cache, core = self.open_chunk(input_data, context, require_pwcpos=False)
        # soss_spec2 has logged (or refused) the exposure's empty integrations.
        empty = empty_integrations(model.data, model.dq) if context else check_integrations(model)
        spatial = cache["spatial"]
        search = self.temporal and stats.nints >= self.temporal_window
        if self.temporal and not search:
            log.warning(
                "Temporal outlier search skipped: %d integrations, fewer than "
                "temporal_window=%d.",
                stats.nints,
                self.temporal_window,
            )
        counts = clean_cube(
            model.data, model.err, model.dq, spatial, cache["sigma"], stats.deep,
            temporal_threshold=self.temporal_threshold if search else None,
            temporal_window=self.temporal_window, max_distance=self.max_distance, core=core,
            outside=non_science(model.meta.subarray.name, model.data.shape[1:]),
        )
        log.info(
            "Bad pixels replaced: %d flagged/non-finite (%.4f%% of the cube), %d spatial "
            "outliers (pixels, x%d integrations), %d temporal outliers (%.5f%%); %d had "
            "no good neighbour within %d columns and took their median over time.",
            counts["n_flagged"],
            100.0 * counts["n_flagged"] / counts["n_elements"],
            counts["n_spatial"],
            model.data.shape[0],
            counts["n_temporal"],
            100.0 * counts["n_temporal"] / counts["n_elements"],
            counts["n_fallback"],
            self.max_distance,
        )
        if empty.any():
            # Nothing to repair in an integration without data: what the
            # fallback put there is the median over time, not a measurement.
            model.data[empty] = np.nan
            model.err[empty] = np.nan
            model.dq[empty] |= np.uint32(FLAGS["DO_NOT_USE"])
        model.soss_badpix = {k: counts[k] for k in ("n_flagged", "n_spatial", "n_temporal")}
        if self.save_plot:
            from jwst_soss_custom.plotting.cleaning import plot_badpix

            path = self.make_output_path(basepath=model.meta.filename, suffix="badpix", ext="png")
            plot_badpix(stats.deep, spatial != 0, model.dq, path)
        self.record_step_status(model)
        return model

    def prepare_exposure(self, context, model):
        """Spatial outliers and temporal noise; hands on the cleaned deep frame."""
        cache = context.step_cache(self.class_alias)
        if "spatial" not in cache:
            cache.update(self._exposure_outliers(context.statistics, model.meta.subarray.name))
        context.statistics = cache["statistics"]

    def _exposure_outliers(self, stats, subarray):
        """Spatial outliers, temporal noise and the cleaned deep frame of an exposure."""
        refpix = non_science(subarray, stats.deep.shape)
        spatial = np.zeros(stats.deep.shape, np.int8)
        if self.spatial:
            deep_sigma = _MEDIAN_EFFICIENCY * stats.err / np.sqrt(stats.nints)
            spatial = spatial_outliers(
                stats.deep,
                np.nan_to_num(deep_sigma, nan=np.inf),
                self.spatial_threshold,
                self.spatial_box,
                exclude=refpix,
            )
        # With few integrations the difference-based sigma alone is often
        # low (measured: with 30 integrations it falls below half the true
        # sigma for ~1 % of pixels): floor it at the pixel's median ERR.
        sigma = np.fmax(stats.sigma, stats.err)
        # The next steps see the deep frame of the cleaned cube: the same
        # interpolation along rows applied to it.
        deep = stats.deep.copy()
        replace_bad_pixels(
            deep[None], ((spatial != 0) | ~np.isfinite(deep))[None] & ~refpix,
            max_distance=self.max_distance,
        )
        return {"spatial": spatial, "sigma": sigma, "statistics": stats.replace(deep=deep)}

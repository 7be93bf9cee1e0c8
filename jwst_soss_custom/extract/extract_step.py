"""stpipe Step: box or optimal extraction of SOSS orders into an x1dints product."""

import logging

import numpy as np

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import non_science
from jwst_soss_custom.metadata import (
    CONTAMINATION_ATTRIBUTE,
    EXTRACTION_ATTRIBUTE,
    ORDER0_ATTRIBUTE,
    integration_times,
    plain_record,
)
from jwst_soss_custom.products import OrderSpectra, make_x1dints
from jwst_soss_custom.stpipe import SossStep
from jwst_soss_custom.tracing import traces_for
from jwst_soss_custom.tracing.contamination import ContaminationModel

from .extract import (
    aperture_profile,
    aperture_rows,
    masked_box_extract,
    optimal_extract,
    static_flux,
    white_light_scatter,
    window_weights,
)

__all__ = ["SossExtractStep", "EXTRACTION_ATTRIBUTE"]

log = logging.getLogger(__name__)



class SossExtractStep(SossStep):
    """Extract the spectrum of each order in every integration.

    Optimal (profile-weighted) or box extraction in an aperture of full width
    ``box_width`` along the traces (from the input's ``soss_traces`` or
    predicted from PWCPOS), with the spatial profile of the deep frame.
    Order-0 contaminants (``soss_order0_mask``) and pixels in another
    order's core are never used. The result is an ``x1dints``
    `TSOMultiSpecModel` with one spectrum table per order, wavelengths
    increasing, one row per integration; ``soss_extraction`` records what
    was done.
    """

    class_alias = "soss_extract"

    spec = """
    orders = int_list(default=list(1, 2))  # spectral orders to extract
    method = option('optimal', 'box', default='optimal')  # profile-weighted (Horne) or box extraction
    box_width = float(default=40.0, min=1)  # full aperture width (px): the box, or the window the optimal weights span (best measured: optimal, 40)
    box_widths = float_list(default=None)  # one width per entry of 'orders' (overrides box_width)
    box_mode = option('fixed', 'optimize', default='fixed')  # 'optimize': keep the width of lowest white-light point-to-point scatter
    optimize_widths = float_list(default=list(16, 20, 24, 28, 32, 36, 40, 48))  # widths scanned by box_mode='optimize'
    clip_sigma = float(default=5.0, min=2)  # optimal: reject pixels this many sigma from the profile fit
    clip_iterations = integer(default=3, min=0)  # optimal: rejection passes (worst pixel per column each)
    overlap_halfwidth = float(default=10.0, min=0)  # never use pixels within this many rows of another order's centre
    use_order0_mask = boolean(default=True)  # never use the order-0 contaminants found by soss_tracing
    decontaminate = boolean(default=True)  # subtract the field stars' light and the other order's wings modelled by soss_tracing (soss_contamination)
    neighbour_max_share = float(default=0.25, min=0)  # the other order's wings are subtracted only in columns where they are at most this share of the order's flux
    suffix = string(default='x1dints')  # suffix of the saved product
    """  # noqa: E501

    def needs_whole_series(self):
        """Whether the widths are compared on the whole time series (``box_mode='optimize'``)."""
        return self.box_mode == "optimize"

    def process(self, input_data, context=None):
        """Extract spectra.

        Parameters
        ----------
        input_data : str or CubeModel
            Cleaned SOSS rateints/calints.
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            The chunk's context inside soss_spec2.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        """
        model, stats, _, _ = self.open_chunk(input_data, context, make_copy=False)
        solution = traces_for(model)
        nints, ny, nx = model.data.shape
        widths = self._widths()
        refpix = non_science(model.meta.subarray.name, (ny, nx))
        order0 = getattr(model, ORDER0_ATTRIBUTE, None) if self.use_order0_mask else None
        if self.needs_whole_series() and nints < stats.nints:
            raise SossInputError(
                "box_mode='optimize' compares the widths' scatter over the whole time series, "
                f"but this is a chunk of {nints} of its {stats.nints} integrations: run "
                "soss_spec2 with a memory_limit that holds the exposure, "
                "or give box_mode='fixed' with the width you want."
            )
        record = {"method": self.method, "box_mode": self.box_mode}
        spectra, geometry = {}, {}
        unread = solution.record.get("orders_not_read", [])
        for order in self.orders:
            if order in unread:
                log.info("Order %d: not on the %s rows, not extracted.", order,
                         model.meta.subarray.name)
                continue
            if order not in solution.orders:
                raise ValueError(
                    f"Order {order} has no trace in the solution (orders "
                    f"{sorted(solution.orders)}); trace it with soss_tracing first."
                )
            trace = solution.orders[order]
            cols = trace.columns
            centre = trace.y[cols]
            science_rows = np.flatnonzero(~refpix.all(axis=1))
            keep = ~refpix.all(axis=0)[cols] & (centre >= 0) & (centre <= science_rows.max())
            cols, centre = cols[keep], centre[keep]
            # Increasing wavelength, as users and binning code expect.
            idx = np.argsort(trace.wavelength[cols])
            cols, centre = cols[idx], centre[idx]
            scan = self.optimize_widths if self.box_mode == "optimize" else [widths[order]]
            rows, valid = aperture_rows(centre, max(scan) / 2, ny)
            off = refpix[rows, cols[None, :]] | ~valid
            order0_hit, overlap = self._excluded(order, solution, order0, rows, cols, valid)
            static = off | order0_hit | overlap
            result = self._extract(model, stats, cols, centre, rows, valid, static, scan)
            width = result.pop("width")
            aperture = window_weights(rows, valid, centre, width) * ~off
            # NPIXELS: the aperture's pixels that may be used.
            result["npixels"] = (aperture * ~static).sum(axis=0)
            info = {
                "width": width,
                "columns": int(cols.size),
                "order0_pixels": int((order0_hit & (aperture > 0)).sum()),
                "overlap_pixels": int((overlap & (aperture > 0)).sum()),
                "overlap_columns": int((overlap & (aperture > 0)).any(axis=0).sum()),
                **result.pop("info"),
            }
            record[f"order{order}"] = info
            geometry[order] = (cols, rows, result.pop("weights"), result.pop("profile"),
                               result.pop("variance"))
            log.info(
                "Order %d: %d columns, %.3f-%.3f um, %s extraction, width %.1f px; %s",
                order, cols.size, trace.wavelength[cols[0]], trace.wavelength[cols[-1]],
                self.method, width,
                ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("width", "columns")),
            )
            spectra[order] = OrderSpectra(wavelength=trace.wavelength[cols], **result)
        self._decontaminate(model, stats, spectra, geometry, record)
        result = make_x1dints(
            model, spectra, integration_times(model), segment=model.meta.exposure.segment_number
        )
        setattr(result, EXTRACTION_ATTRIBUTE, record)
        # The images stay with the calints; the x1dints keep their summary.
        if hasattr(result, CONTAMINATION_ATTRIBUTE):
            delattr(result, CONTAMINATION_ATTRIBUTE)
        result.meta.filename = model.meta.filename
        self.record_step_status(result)
        return result

    def _decontaminate(self, model, stats, spectra, geometry, record):
        """Subtract what soss_tracing modelled under each aperture; record it per wavelength.

        The field stars' light does not transit: its extracted flux is
        subtracted from every integration (the depths are no longer
        diluted). The other order's wings transit with that order: their
        flux is subtracted scaled by that order's white light relative to
        the deep frame (1 when that order is not extracted here), in the
        columns where they are at most ``neighbour_max_share`` of the flux.
        """
        tree = getattr(model, CONTAMINATION_ATTRIBUTE, None) if self.decontaminate else None
        if tree is None:
            for order in spectra:
                record[f"order{order}"]["contamination"] = (
                    "not corrected" if not self.decontaminate
                    else "no model (soss_tracing without field_traces/overlap_model)")
            return
        contamination = ContaminationModel.from_tree(plain_record(tree))
        expected, relative = {}, {}
        for order, (cols, rows, weights, profile, variance) in geometry.items():
            expected[order] = static_flux(stats.deep, rows, cols, weights, profile, variance)
            flux = spectra[order]["flux"]
            # Each integration over its own finite columns (some may be
            # NaN, a whole integration may be: its scale is then 1).
            ok = np.isfinite(flux) & (expected[order] > 0)[None, :]
            with np.errstate(invalid="ignore", divide="ignore"):
                scale = (np.where(ok, flux, 0.0).sum(axis=1)
                         / np.where(ok, expected[order][None, :], 0.0).sum(axis=1))
            relative[order] = np.where(np.isfinite(scale), scale, 1.0)
        for order, (cols, rows, weights, profile, variance) in geometry.items():
            field = static_flux(contamination.field, rows, cols, weights, profile, variance)
            neighbour = contamination.neighbours.get(order)
            wings = (np.zeros(cols.size) if neighbour is None else
                     static_flux(neighbour, rows, cols, weights, profile, variance))
            others = [o for o in relative if o != order]
            scale = relative[others[0]] if others else np.ones(spectra[order]["flux"].shape[0])
            target = expected[order] - field - wings
            with np.errstate(invalid="ignore", divide="ignore"):
                dilution = np.where(target > 0, field / target, np.nan)
                share = np.where(target > 0, wings / target, np.nan)
            # Where the other order outshines this one (order 2 redwards of
            # ~1 um), a subtraction would only trade its noise for this
            # order's light: left as it is, and counted.
            dominated = ~(share <= self.neighbour_max_share)
            wings_used = np.where(dominated, 0.0, wings)
            spectra[order]["flux"] = (spectra[order]["flux"] - field[None, :]
                                      - wings_used[None, :] * scale[:, None])
            record[f"order{order}"]["contamination"] = {
                "wavelength": spectra[order]["wavelength"].astype(np.float32),
                "target_flux": target.astype(np.float32),
                "field_flux": field.astype(np.float32),
                "neighbour_flux": wings.astype(np.float32),
                "dilution": dilution.astype(np.float32),
                "neighbour_share": share.astype(np.float32),
                "neighbour_dominated_columns": int(dominated.sum()),
                "max_dilution": float(np.nanmax(dilution, initial=0.0)),
                "mean_dilution": float(np.nanmean(dilution)) if np.isfinite(dilution).any()
                else 0.0,
            }
            log.info("Order %d: field stars' light subtracted (dilution mean %.4f, max %.4f); "
                     "other order's wings subtracted in %d columns (median share %.4f), "
                     "%d columns where it dominates left as they are", order,
                     record[f"order{order}"]["contamination"]["mean_dilution"],
                     record[f"order{order}"]["contamination"]["max_dilution"],
                     int((~dominated).sum()),
                     float(np.nanmedian(share)) if np.isfinite(share).any() else 0.0,
                     int(dominated.sum()))

    def _excluded(self, order, solution, order0, rows, cols, valid):
        """Order-0 contaminant and order-overlap pixels in the gathered aperture."""
        hit = np.zeros(rows.shape, bool)
        if order0 is not None:
            hit = np.asarray(order0, bool)[rows, cols[None, :]] & valid
        overlap = np.zeros(rows.shape, bool)
        for other, other_trace in solution.orders.items():
            if other != order:
                gap = np.abs(rows - np.nan_to_num(other_trace.y[cols], nan=-1e6)[None, :])
                overlap |= (gap <= self.overlap_halfwidth) & valid
        return hit, overlap

    def _widths(self):
        """Aperture width of each order from box_width / box_widths."""
        if self.box_widths is None:
            return {order: float(self.box_width) for order in self.orders}
        if len(self.box_widths) != len(self.orders):
            raise ValueError(
                f"box_widths={list(self.box_widths)} gives {len(self.box_widths)} widths for "
                f"orders {list(self.orders)}; give one width per order."
            )
        return {order: float(w) for order, w in zip(self.orders, self.box_widths)}

    def _extract(self, model, stats, cols, centre, rows, valid, static, scan):
        """Extract one order at every width of ``scan``; keep the least noisy."""
        # Excluded pixels leave the aperture: they are neither summed nor filled
        # (the deep frame there holds the contaminant, not the order's profile).
        weights = np.stack([window_weights(rows, valid, centre, w) * ~static for w in scan])
        profile = aperture_profile(stats.deep, rows, cols, weights.max(axis=0))
        if self.method == "box":
            flux, error, dq, n_filled = masked_box_extract(
                model.data, model.err, model.dq, cols, rows, weights, profile
            )
            extra = [{"filled_elements": int(n)} for n in n_filled]
        else:
            variance = stats.err[rows, cols[None, :]].astype(np.float64) ** 2
            runs = [
                optimal_extract(model.data, model.err, model.dq, cols, rows, w, profile,
                                variance, self.clip_sigma, self.clip_iterations)
                for w in weights
            ]
            flux, error, dq = (np.stack([r[k] for r in runs], axis=1) for k in range(3))
            extra = [{"rejected_pixels": r[3]} for r in runs]
        best = 0
        info = dict(extra[0])
        geometry = {"profile": profile,
                    "variance": None if self.method == "box" else variance}
        if len(scan) > 1:
            scatter = white_light_scatter(flux)
            best = int(np.nanargmin(scatter))
            info = {**extra[best], "scan_ppm": {f"{w:g}": float(s * 1e6)
                                                for w, s in zip(scan, scatter)}}
        return {
            **geometry,
            "weights": weights[best],
            "width": float(scan[best]),
            "flux": flux[:, best],
            "flux_error": error[:, best],
            "dq": dq[:, best],
            "info": info,
        }

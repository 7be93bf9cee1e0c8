"""stpipe Step: box extraction of SOSS orders into an x1dints product."""

import logging

import numpy as np

from jwst_soss_custom.dq import reference_pixels
from jwst_soss_custom.exposure import check_soss_model, integration_times
from jwst_soss_custom.products import OrderSpectra, make_x1dints
from jwst_soss_custom.stpipe import SossStep
from jwst_soss_custom.tracing import traces_for

from .extract import box_extract, box_weights

__all__ = ["SossExtractStep"]

log = logging.getLogger(__name__)


class SossExtractStep(SossStep):
    """Extract the spectrum of each order in every integration.

    Box extraction with fractional edge pixels along the traces (from the
    input's ``soss_traces`` or predicted from PWCPOS); errors propagated from
    ERR. The result is an ``x1dints`` `TSOMultiSpecModel` with one spectrum
    table per order, wavelengths increasing, one row per integration.
    """

    class_alias = "soss_extract"

    spec = """
    orders = int_list(default=list(1, 2))  # spectral orders to extract
    box_width = float(default=30.0, min=1)  # full width of the box aperture in pixels
    suffix = string(default='x1dints')  # suffix of the saved product
    """  # noqa: E501

    def process(self, input_data):
        """Extract spectra.

        Parameters
        ----------
        input_data : str or CubeModel
            Cleaned SOSS rateints/calints.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
        """
        model = self.prepare_output(input_data, make_copy=False)
        check_soss_model(model)
        solution = traces_for(model)
        ny, nx = model.data.shape[1:]
        science_rows = ~reference_pixels((ny, nx)).all(axis=1)
        science_cols = ~reference_pixels((ny, nx)).all(axis=0)
        spectra = {}
        for order in self.orders:
            if order not in solution.orders:
                raise ValueError(
                    f"Order {order} has no trace in the solution (orders "
                    f"{sorted(solution.orders)}); trace it with soss_tracing first."
                )
            trace = solution.orders[order]
            cols = trace.columns
            centre = trace.y[cols]
            # Keep columns whose trace centre lies on science pixels.
            keep = science_cols[cols] & (centre >= 0) & (centre <= np.flatnonzero(science_rows).max())
            cols, centre = cols[keep], centre[keep]
            # Increasing wavelength, as users and binning code expect.
            order_idx = np.argsort(trace.wavelength[cols])
            cols, centre = cols[order_idx], centre[order_idx]
            weights = box_weights(centre, self.box_width, ny)
            weights[~science_rows] = 0.0
            flux, error, dq = box_extract(model.data, model.err, model.dq, cols, weights)
            n_missing = int(np.isnan(flux).sum())
            log.info(
                "Order %d: %d columns, %.3f-%.3f um, box width %.1f px%s",
                order,
                cols.size,
                trace.wavelength[cols[0]],
                trace.wavelength[cols[-1]],
                self.box_width,
                f"; {n_missing} elements with unusable pixels set to NaN" if n_missing else "",
            )
            spectra[order] = OrderSpectra(
                wavelength=trace.wavelength[cols],
                flux=flux,
                flux_error=error,
                dq=dq,
                npixels=weights.sum(axis=0),
            )
        result = make_x1dints(
            model, spectra, integration_times(model), segment=model.meta.exposure.segment_number
        )
        result.meta.filename = model.meta.filename
        self.record_step_status(result)
        return result

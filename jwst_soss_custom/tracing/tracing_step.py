"""stpipe Step: traces refined on the data, stability regressors, order-0 mask."""

import logging
import time

import numpy as np

from jwst_soss_custom._base.data import order3_centre
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom._base.geometry import non_science, reference_pixels
from jwst_soss_custom.ecsv import write_ecsv
from jwst_soss_custom.metadata import (
    CONTAMINATION_ATTRIBUTE,
    ORDER0_ATTRIBUTE,
    REGRESSORS_ATTRIBUTE,
)
from jwst_soss_custom.references import read_image_arrays
from jwst_soss_custom.stpipe import SossStep

from .contamination import contamination_model
from .refine import (
    core_mask,
    detect_order0,
    refine_solution,
    stability_regressors,
)
from .tracing import MODEL_ATTRIBUTE, TraceSolution, drop_unread_orders, predict_traces
from .wavecal import check_wavelengths, load_line_list

__all__ = ["SossTracingStep", "traces_for", "ORDER0_ATTRIBUTE", "read_order0_file",
           "read_field_catalog"]

log = logging.getLogger(__name__)
#: Fit quality a field-star trace needs in the first search (before the
#: order 0s are found and masked) to be refitted and judged again.
CANDIDATE_QUALITY = 0.25


#: Blue edge (micron) of the F277W filter, with a margin below its 2.41 micron
#: half-power point: an F277W exposure shows order 1 only beyond it, and no
#: order 2 or 3 at all.
F277W_BLUE_EDGE = 2.35
#: Rows either side of an untraced order's centre kept out of the searches
#: for field stars and order 0s (as order 3's band).
UNTRACED_HALFWIDTH = 26.0


class SossTracingStep(SossStep):
    """Locate the orders on the detector and attach the solution to the model.

    pastasoss predicts the trace centres and wavelengths of orders 1 and 2 for
    the exposure's PWCPOS; the step refines the positions on the deep frame
    (global shift), checks the wavelengths on stellar absorption lines,
    measures order 1's per-integration x/y shift and width change
    (``soss_regressors``), and finds field-star order-0 contaminants
    (``soss_order0_mask``). Order 3 is not traced (no pastasoss model).
    """

    class_alias = "soss_tracing"

    spec = """
    orders = int_list(default=list(1, 2))  # spectral orders to trace (pastasoss models 1 and 2)
    refine = boolean(default=True)  # refine pastasoss's trace positions on the deep frame
    refine_width = float(default=60.0, min=10)  # centroid window (px); must hold the whole profile core
    refine_isolation = float(default=20.0, min=0)  # rows a column's window must stay clear of other orders
    refine_degree = integer(default=0, min=0, max=5)  # smooth residual on top of the global shift (0 = shift only)
    regressors = boolean(default=True)  # per-integration dx, dy, dwidth of order 1 (soss_regressors)
    regressor_halfwidth = float(default=15.0, min=3)  # rows either side of order 1's centre used for the regressors
    order0_detect = boolean(default=True)  # search the deep frame for field-star order-0 contaminants
    order0_threshold = float(default=5.0, min=1)  # detection threshold in sigma of the deep frame
    order0_core_halfwidth = float(default=20.0, min=0)  # trace cores (rows either side) excluded from the search
    order0_file = string(default=None)  # .npy/.fits: a mask (True/1 = contaminant) or an F277W image to search
    field_traces = boolean(default=True)  # find field stars' spectral traces on the deep frame and model their light (soss_contamination)
    field_threshold = float(default=8.0, min=3)  # detection threshold of a field-star trace (robust sigma of the correlation map)
    field_max = integer(default=6, min=0)  # most field-star traces searched for
    field_catalog = string(default=None)  # ECSV with columns dx, dy (px): known shifts of field stars' traces from the target's (no search)
    field_min_quality = float(default=0.5, min=0, max=1)  # share of the data's variance a field-star trace must explain where it is bright, to be modelled
    overlap_model = boolean(default=True)  # model each order's wings under the other order's aperture (soss_contamination)
    wavelength_check = boolean(default=True)  # measure each order's wavelength shift on stellar lines
    line_list = string(default=None)  # ECSV with 'wavelength' (um, vacuum), 'strength'; None = packaged list
    stellar_rv = float(default=None)  # host's systemic radial velocity (km/s); None = fitted from its lines
    wavelength_snr_min = float(default=5.0)  # line-template S/N below which the shift is 'not measurable'
    wavelength_max_error = float(default=0.2, min=0)  # largest error (px) of a shift that is applied
    wavelength_apply_sigma = float(default=0.0, min=0)  # also require |shift| > this many sigma (0: any shift known to max_error)
    save_traces = boolean(default=False)  # write <root>_traces.ecsv and <root>_regressors.ecsv
    plot = boolean(default=False)  # write <root>_traces.png (trace overlay, order 0s, regressors)
    suffix = string(default='tracing')  # suffix of the saved model
    """  # noqa: E501

    def process(self, input_data, context=None):
        """Attach traces, regressors and the order-0 mask to a rateints/calints model.

        Parameters
        ----------
        input_data : str or CubeModel
            SOSS rateints or calints (background-subtracted preferably).
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            The chunk's context inside soss_spec2.

        Returns
        -------
        CubeModel
            The input with ``soss_traces``, ``soss_regressors`` and
            ``soss_order0_mask`` set.
        """
        model, stats, cache, _ = self.open_chunk(input_data, context)
        nints, ny, nx = model.data.shape
        solution, mask, deep = cache["solution"], cache["mask"], stats.deep
        setattr(model, ORDER0_ATTRIBUTE, mask)
        if cache.get("contamination") is not None:
            setattr(model, CONTAMINATION_ATTRIBUTE, cache["contamination"].to_tree())
        regressors = None
        if self.regressors and 1 in solution.orders:
            cols = solution.orders[1].columns
            cols = cols[(cols >= 4) & (cols < nx - 4)]
            start = model.meta.exposure.integration_start or 1
            outside = non_science(model.meta.subarray.name, (ny, nx))
            regressors = stability_regressors(
                model.data, model.dq, deep, solution.orders[1].y, cols,
                self.regressor_halfwidth, exclude=mask | outside, int_start=start,
            )
            setattr(model, REGRESSORS_ATTRIBUTE, regressors)
            log.info(
                "Order 1 stability: dx rms %.4f px, dy rms %.4f px, dwidth rms %.5f",
                *(np.std(regressors[k]) for k in ("dx", "dy", "dwidth")),
            )
        for order, trace in solution.orders.items():
            cols = trace.columns
            log.info(
                "Order %d: %d columns on the detector, %.3f-%.3f um",
                order, cols.size, np.nanmin(trace.wavelength), np.nanmax(trace.wavelength),
            )
        setattr(model, MODEL_ATTRIBUTE, solution.to_tree())
        self._save_side_products(model, solution, regressors, deep, mask)
        self.record_step_status(model)
        return model

    def prepare_exposure(self, context, model):
        """Trace solution and order-0 mask from the deep frame (the statistics pass unchanged)."""
        cache = context.step_cache(self.class_alias)
        if "solution" not in cache:
            cache.update(self._exposure_traces(model, context.statistics))

    def _velocity(self, model):
        """The star's velocity relative to JWST (km/s), or None to fit it."""
        if self.stellar_rv is None:
            return None
        velosys = model.meta.wcsinfo.velosys
        if velosys is None:
            log.warning("stellar_rv given but the input has no VELOSYS (JWST's barycentric "
                        "velocity correction): taken as 0, which may be off by up to 30 km/s.")
            velosys = 0.0
        # jwst's convention: lambda_bary = lambda_obs / (1 + VELOSYS / c).
        return float(self.stellar_rv) + float(velosys) / 1000.0

    def _exposure_traces(self, model, stats):
        """Trace solution and order-0 mask from the deep frame, once per exposure."""
        pwcpos = model.meta.instrument.pupil_position
        nx = stats.deep.shape[1]
        solution = predict_traces(pwcpos, self.orders, nx)
        solution.record["order3"] = "not traced or extracted: pastasoss has no order-3 model"
        dropped = drop_unread_orders(solution, model.meta.subarray.name)
        # Pixels left out of the contaminant searches: no science data
        # (reference pixels, rows not read), and the cores of the orders not
        # traced, whose light is there but not modelled (as order 3's below).
        outside = non_science(model.meta.subarray.name, stats.deep.shape)
        outside |= core_mask(dropped, stats.deep.shape, UNTRACED_HALFWIDTH)
        if self.refine:
            solution = refine_solution(
                stats.deep, solution, self.refine_width, self.refine_isolation,
                degree=self.refine_degree,
            )
        if self.wavelength_check:
            check_wavelengths(
                stats.deep, solution, load_line_list(self.line_list),
                snr_min=self.wavelength_snr_min, max_error=self.wavelength_max_error,
                apply_sigma=self.wavelength_apply_sigma, noise=stats.noise,
                velocity=self._velocity(model),
            )
            shifts = {order: trace.record["wavelength"]["applied_shift"]
                      for order, trace in solution.orders.items()}
            if self.refine and any(shifts.values()):
                # The spectrum moved along the trace: so did the trace (the
                # geometry alone cannot tell a shift along a straight trace).
                solution = refine_solution(
                    stats.deep, solution, self.refine_width, self.refine_isolation,
                    degree=self.refine_degree, dx=shifts,
                )
        if not (self.field_traces or self.field_catalog or self.overlap_model):
            mask = self._order0_mask(stats.deep, stats.noise, solution, outside)
            return {"solution": solution, "mask": mask, "contamination": None}
        # Field stars' traces first: the order-0 search would take pieces of
        # them for order 0s. The order 0s are then searched for without the
        # traces, and the traces refitted without the order 0s.
        shape = stats.deep.shape
        nothing = np.zeros(shape, bool)
        shifts = read_field_catalog(self.field_catalog) if self.field_catalog else None
        if shifts is None and not self.field_traces:
            shifts = []
        # A candidate is refitted without the order 0s before it is judged
        # (they spoil the fit of the trace they sit on): a lower bar here.
        start = time.perf_counter()
        first = self._contamination(stats.deep, solution, nothing, shifts, outside,
                                    min_quality=CANDIDATE_QUALITY, overlap=False)
        mask = self._order0_mask(stats.deep - first.field, stats.noise, solution, outside)
        contamination = self._contamination(stats.deep, solution, mask, first.stars, outside)
        contamination.record["search"] = first.record["search"]
        log.info("Field-star traces: %d modelled (%s), order overlap %s (%.1f s with the "
                 "order-0 search)",
                 contamination.record["n_field_traces"], contamination.record["search"],
                 contamination.record["overlap_model"], time.perf_counter() - start)
        contamination.record["rejected_field_traces"] += first.record["rejected_field_traces"]
        self._log_contamination(contamination)
        solution.record["contamination"] = contamination.record
        return {"solution": solution, "mask": mask, "contamination": contamination}

    def _contamination(self, deep, solution, order0, shifts, outside, min_quality=None,
                       overlap=None):
        """Field stars' traces (searched for when ``shifts`` is None) and the orders' wings."""
        shape = deep.shape
        # Order 3 is not traced; its band is left out of the fit like the order 0s.
        excluded = order0 | outside | core_mask(
            [order3_centre(shape[1])], shape, 26.0)
        return contamination_model(
            deep, {o: t.y for o, t in solution.orders.items()},
            {o: t.wavelength for o, t in solution.orders.items()}, excluded,
            shifts=shifts, threshold=self.field_threshold, max_sources=self.field_max,
            min_quality=self.field_min_quality if min_quality is None else min_quality,
            overlap=self.overlap_model if overlap is None else overlap,
        )

    @staticmethod
    def _log_contamination(model):
        for star in model.record["field_traces"]:
            log.info("Field-star trace at dx %+.1f, dy %+.1f px (%.1f sigma, fit quality %.2f): "
                     "flux ratio %.4f (order 1), %.4f (order 2)", star["dx"], star["dy"],
                     star["significance"], star["quality"], star.get("flux_ratio_order_1", 0.0),
                     star.get("flux_ratio_order_2", 0.0))
        for star in model.record["rejected_field_traces"]:
            log.warning("A trace-like residual at dx %+.1f, dy %+.1f px is not a shifted copy of "
                        "the target's traces (fit quality %.2f): not modelled; check the deep "
                        "frame there.", star["dx"], star["dy"], star["quality"])

    def _order0_mask(self, deep, noise, solution, outside):
        """Contaminant mask from the deep frame and/or the user's file."""
        shape = deep.shape
        mask = np.zeros(shape, bool)
        cores = core_mask([t.y for t in solution.orders.values()], shape,
                          self.order0_core_halfwidth)
        # Order 3 is faint (~1 DN/s): only its centre would fake detections.
        cores |= core_mask([order3_centre(shape[1])], shape, self.order0_core_halfwidth / 2)
        cores |= outside
        catalog = []
        if self.order0_detect:
            found, catalog = detect_order0(deep, noise, cores, self.order0_threshold)
            mask |= found
        if self.order0_file:
            given, is_mask = read_order0_file(self.order0_file, shape)
            if not is_mask:
                # Background-dominated image: one robust noise level for all pixels.
                sigma = 1.4826 * np.nanmedian(np.abs(given - np.nanmedian(given)))
                hidden = f277w_cores(solution, shape, self.order0_core_halfwidth)
                given, more = detect_order0(given, sigma, hidden, self.order0_threshold)
                catalog += more
            mask |= given
        solution.record["order0"] = {"n_found": len(catalog), "n_pixels": int(mask.sum())}
        log.info("Order-0 contaminants: %d found, %d pixels masked", len(catalog), mask.sum())
        return mask

    def _save_side_products(self, model, solution, regressors, deep, mask):
        if self.save_traces:
            path = self.make_output_path(basepath=model.meta.filename, suffix="traces", ext="ecsv")
            write_ecsv(solution.to_table(), path)
            log.info("Saved trace table %s", path)
            if regressors is not None:
                from astropy.table import Table

                path = self.make_output_path(
                    basepath=model.meta.filename, suffix="regressors", ext="ecsv"
                )
                write_ecsv(Table(regressors), path)
                log.info("Saved regressors %s", path)
        if self.plot:
            from jwst_soss_custom.plotting.tracing import plot_tracing

            path = self.make_output_path(basepath=model.meta.filename, suffix="traces", ext="png")
            plot_tracing(deep, solution, mask, regressors, path)


def f277w_cores(solution, shape, halfwidth):
    """Pixels of an F277W exposure where trace light hides contaminants.

    Through F277W only order 1 beyond `F277W_BLUE_EDGE` shows. The CLEAR
    cores of orders 2 and 3 are empty there, and excluding them (as the
    deep-frame search must) would miss exactly the contaminants under the
    traces that the F277W exposure is taken to find.

    Parameters
    ----------
    solution : TraceSolution
        Traces of the exposure.
    shape : tuple of int
    halfwidth : float
        Rows either side of the order-1 centre.

    Returns
    -------
    ndarray of bool (ny, nx)
    """
    cores = reference_pixels(shape)
    if 1 in solution.orders:
        order1 = solution.orders[1]
        red = np.where(order1.wavelength >= F277W_BLUE_EDGE, order1.y, np.nan)
        cores |= core_mask([red], shape, halfwidth)
    return cores


def read_field_catalog(path):
    """Known field-star trace shifts ``[(dx, dy), ...]`` from an ECSV with columns dx, dy."""
    from astropy.table import Table

    try:
        table = Table.read(path, format="ascii.ecsv")
    except FileNotFoundError:
        raise SossInputError(f"field_catalog {path} does not exist; give an ECSV file with "
                             "columns dx, dy (pixels).") from None
    except Exception as err:
        raise SossInputError(f"field_catalog {path} is not a readable ECSV table ({err}); give "
                             "one with columns dx, dy (pixels).") from None
    missing = [c for c in ("dx", "dy") if c not in table.colnames]
    if missing:
        raise SossInputError(f"field_catalog {path} has no column {', '.join(missing)}; it needs "
                             "dx and dy (pixels: the field star's traces minus the target's).")
    values = np.array([table["dx"], table["dy"]], float).T
    if not np.all(np.isfinite(values)):
        raise SossInputError(f"field_catalog {path} has non-finite dx/dy values; remove those rows.")
    return [tuple(v) for v in values]


def read_order0_file(path, shape):
    """Read a user order-0 mask or F277W image (.npy or FITS).

    Parameters
    ----------
    path : str
    shape : tuple of int
        Expected frame shape (256, 2048).

    Returns
    -------
    array : ndarray
        Boolean mask, or float image.
    is_mask : bool
        Whether the file holds a mask (booleans or only 0 and 1).
    """
    items = dict(read_image_arrays(path, "order0_file"))
    if not items:
        raise SossInputError(f"order0_file {path} holds no image.")
    array = np.squeeze(items.get("SCI", next(iter(items.values()))))
    if array.ndim == 3:
        array = np.nanmedian(array, axis=0)
    if array.shape != tuple(shape):
        raise SossInputError(
            f"order0_file {path} has shape {array.shape}; expected {tuple(shape)} "
            "(a SUBSTRIP256 mask or F277W image)."
        )
    values = np.unique(array[np.isfinite(array)]) if array.dtype != bool else None
    is_mask = array.dtype == bool or (values.size <= 2 and np.isin(values, (0, 1)).all())
    return (array.astype(bool), True) if is_mask else (array.astype(np.float32), False)


def traces_for(model, ncols=None):
    """The trace solution of a model, predicted from PWCPOS if it has none.

    Parameters
    ----------
    model : CubeModel
        SOSS rateints/calints, possibly processed by `SossTracingStep`.
    ncols : int or None
        Columns of the frames (default: from ``model.data``; give it for a
        model holding only metadata).

    Returns
    -------
    TraceSolution
    """
    tree = getattr(model, MODEL_ATTRIBUTE, None)
    if tree is not None:
        return TraceSolution.from_tree(tree)
    log.info("No trace solution on the input: predicting it from PWCPOS with pastasoss.")
    ncols = model.data.shape[-1] if ncols is None else ncols
    return predict_traces(model.meta.instrument.pupil_position, ncols=ncols)

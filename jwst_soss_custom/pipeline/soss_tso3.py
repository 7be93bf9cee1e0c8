"""``soss_tso3``: Stage 3 of a SOSS time series, from x1dints segments to light curves.

1. open the ``x1dints`` segments (a level-3 association, a file, or a list);
2. stitch them into one exposure-long product, checked for consistency
   (`~jwst_soss_custom.lightcurves.stitch_x1dints`);
3. make the white-light and spectroscopic light curves and the precision
   report (`~jwst_soss_custom.lightcurves.SossLightCurvesStep`, sub-step
   ``lightcurves``: baseline, binning, outlier clipping, regressors, plots);
4. optionally (sub-step ``fit``, a `~jwst_soss_custom.fitting.SossFitStep`,
   skipped by default) fit the white light and the channels: the transit
   depths as ``<product>_fit_whitelight.ecsv`` and
   ``<product>_transmission.ecsv``.

Products, written into ``output_dir`` when results are saved (``strun``
saves by default): ``<product>_x1dints.fits`` (the stitched spectra, which
``process`` returns), ``<product>_whtlt.ecsv``, ``<product>_speclc.ecsv``,
``<product>_precision.ecsv`` and, with ``save_plots``, PNG diagnostics.
"""

import logging
import re
from os.path import realpath
from pathlib import Path

from jwst.lib.suffix import remove_suffix
from stdatamodels.jwst import datamodels

from jwst_soss_custom._base.errors import SossInputError

from jwst_soss_custom.exposure import read_association
from jwst_soss_custom.fitting import SossFitStep
from jwst_soss_custom.lightcurves import SossLightCurvesStep, stitch_x1dints
from jwst_soss_custom.lightcurves.stitching import detach_x1dints
from jwst_soss_custom.lightcurves.modes import as_x1dints
from jwst_soss_custom.stpipe import SossPipeline

__all__ = ["SossTso3Pipeline", "product_name_from_filename"]

log = logging.getLogger(__name__)

_SEGMENT = re.compile(r"-seg\d+")


def product_name_from_filename(filename):
    """Product name of an exposure from one of its files.

    Drops the directory, the extension, the segment part (``-segNNN``) and a
    known suffix (``x1dints``, ...):
    ``jw01366001001_04101_00001-seg001_nis_x1dints.fits`` gives
    ``jw01366001001_04101_00001_nis``.

    Parameters
    ----------
    filename : str or Path
        A file name.

    Returns
    -------
    str
    """
    stem = Path(str(filename)).name
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    stem = _SEGMENT.sub("", stem)
    stem, _ = remove_suffix(stem)
    return stem


class SossTso3Pipeline(SossPipeline):
    """Stitch x1dints segments and make the white-light and spectroscopic light curves.

    Input: a level-3 association (``.json``, e.g. from ``asn_from_list -o
    asn.json --product-name <product> <x1dints files>``) whose science
    members are the x1dints segments of one exposure, a single x1dints file,
    or a list of files or `TSOMultiSpecModel` objects.

    The product name is the association's product name; otherwise
    ``output_file`` if given, else the first input's name without its
    segment part and suffix. ``process`` returns the stitched
    `TSOMultiSpecModel`; the light-curve tables are written as side products
    when results are saved (see ``docs/tso3.md``).
    """

    class_alias = "soss_tso3"

    spec = """
    wave_tolerance = float(min=0, default=1e-4)  # largest wavelength difference (micron) allowed between the segments' grids
    suffix = string(default="x1dints")  # suffix of the stitched spectra product
    """  # noqa: E501

    step_defs = {"lightcurves": SossLightCurvesStep, "fit": SossFitStep}

    @classmethod
    def load_spec_file(cls, preserve_comments=None):
        """The merged spec, with the ``fit`` sub-step skipped by default.

        Transit fits need the orbital period, which the x1dints do not carry,
        so ``fit`` runs only when asked (``--steps.fit.skip=false
        --steps.fit.period=...``); standalone ``soss_fit`` keeps ``skip=False``.
        """
        kwargs = {} if preserve_comments is None else {"preserve_comments": preserve_comments}
        spec = super().load_spec_file(**kwargs)
        spec["steps"]["fit"]["skip"] = "boolean(default=True)"
        return spec

    def run(self, *args):
        """Run the pipeline; ``output_file`` is restored afterwards.

        ``process`` sets ``output_file`` to the product name so that stpipe
        names the saved products after it; restoring it keeps a reused
        instance from naming the next run's products after this one.
        """
        output_file = self.output_file
        try:
            return super().run(*args)
        finally:
            self.output_file = output_file

    def process(self, input_data, *more_segments):
        """Stitch the segments and make the light curves.

        Parameters
        ----------
        input_data : str, Path, TSOMultiSpecModel, or list of them
            Level-3 association, x1dints file(s) or model(s).
        *more_segments : str or Path
            Further x1dints files (``strun soss_tso3 seg1.fits seg2.fits``).

        Returns
        -------
        `~stdatamodels.jwst.datamodels.TSOMultiSpecModel`
            The stitched x1dints product.
        """
        if not self.fit.skip and self.fit.period is None:
            # Checked before any work: the x1dints carry no orbital period.
            raise SossInputError(
                "steps.fit is on but has no orbital period: give it in days "
                "(--steps.fit.period=4.0552941, or steps={'fit': {'period': ...}})."
            )
        models, product, paths, asn = self._open_inputs(
            self.gather_inputs(input_data, more_segments))
        # Files were read into memory and closed (`detach_x1dints`); the
        # stitching may then let each order's inputs go once stitched. Models
        # given in memory are the caller's: only read.
        owned = all(path is not None for path in paths)
        stitched = stitch_x1dints(models, wave_tolerance=self.wave_tolerance, consume=owned)
        # Inputs mixing files and models were not consumed: the files' copies
        # go now, before the light curves.
        models.clear()

        if self.output_file is not None:
            product = product_name_from_filename(self.output_file)
        self.output_file = product
        stitched.meta.filename = f"{product}_{self.suffix}.fits"
        if asn is not None:
            stitched.meta.asn.table_name = asn["table_name"]
        if self.save_results:
            self._check_no_overwrite(paths)
        log.info("Product name: %s", product)

        lightcurves = self.lightcurves
        step_saves = lightcurves.save_results
        # The tables are this pipeline's products: written whenever it saves.
        lightcurves.save_results = step_saves or self.save_results
        try:
            whtlt = lightcurves.run(stitched)
        finally:
            lightcurves.save_results = step_saves
        if not lightcurves.skip:
            stitched.meta.cal_step.soss_lightcurves = "COMPLETE"
            if not self.fit.skip:
                self._run_fit(lightcurves, whtlt)
        return stitched

    def _run_fit(self, lightcurves, whtlt):
        """Fit the light curves just made, writing the fit products beside the whtlt.

        When the tables were saved, the fit reads ``<product>_whtlt.ecsv`` and
        the ``speclc`` beside it (and writes its products there, unless
        ``steps.fit.output_dir`` says otherwise); otherwise it fits the
        white-light table in memory (the speclc is only kept on disk).
        """
        fit = self.fit
        step_saves, step_dir = fit.save_results, fit.output_dir
        fit.save_results = step_saves or self.save_results
        source = whtlt
        if lightcurves.save_results or self.save_results:
            source = str(lightcurves.make_output_path())
            if fit.output_dir is None:
                fit.output_dir = str(Path(source).parent)
        try:
            fit.run(source)
        finally:
            fit.save_results, fit.output_dir = step_saves, step_dir

    def _open_inputs(self, input_data):
        """Open the x1dints inputs.

        Returns
        -------
        models : list of TSOMultiSpecModel
            In memory: a file's model is copied (`detach_x1dints`) and the
            file closed; models given in memory are the caller's, as given.
        product : str
            Product name from the association or the first input's name.
        paths : list of str or None
            File of each model (None for a model given in memory).
        asn : dict or None
            ``table_name`` of an association input.
        """
        asn_info = None
        if isinstance(input_data, (str, Path)) and str(input_data).lower().endswith(".json"):
            # Members are relative to the association's folder unless
            # input_dir says otherwise (a parameter file may carry input_dir='').
            items, products = read_association(input_data, self.input_dir)
            if len(products) == 1:
                product = products[0]
            else:
                product = product_name_from_filename(items[0])
                log.info(
                    "Association %s has %d products; naming the stitched product %s.",
                    input_data,
                    len(products),
                    product,
                )
            asn_info = {"table_name": Path(str(input_data)).name}
        elif isinstance(input_data, (str, Path, datamodels.JwstDataModel)):
            items = [input_data]
            product = None
        else:
            items = list(input_data)
            product = None
            if not items:
                raise SossInputError("No x1dints inputs were given to soss_tso3.")

        models, paths = [], []
        try:
            for item in items:
                if isinstance(item, datamodels.JwstDataModel):
                    model, path = item, None
                else:
                    path = self.make_input_path(str(item))
                    if not Path(path).is_file():
                        raise SossInputError(
                            f"Input file {path} does not exist; check the association "
                            "members or the file name."
                        )
                    model = datamodels.open(path)
                models.append(model)
                paths.append(path)
                readable = as_x1dints(model, path or model.meta.filename or "input model",
                                      "soss_tso3")
                if path is not None:
                    # Read from a file: its tables once, in memory, and the
                    # file closed before the next (`detach_x1dints`); a
                    # converted model is in memory already.
                    if readable is model:
                        readable = detach_x1dints(model)
                    model.close()
                models[-1], paths[-1] = readable, path
        except Exception:
            for model, path in zip(models, paths, strict=True):
                if path is not None:
                    model.close()
            raise
        if product is None:
            first = paths[0] or models[0].meta.filename or "soss_tso3"
            product = product_name_from_filename(first)
        return models, product, paths, asn_info

    def _check_no_overwrite(self, paths):
        """Refuse to write the stitched product over one of the inputs."""
        output = realpath(self.make_output_path())
        for path in paths:
            if path is not None and realpath(path) == output:
                raise SossInputError(
                    f"Saving the stitched product as {output} would overwrite the input "
                    f"{path}. Set output_dir to another directory or output_file to "
                    "another product name."
                )

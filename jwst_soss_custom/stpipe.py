"""Base classes for the package's stpipe Steps and Pipelines.

They are ordinary `jwst.stpipe` Steps with three changes, all so that the
package runs offline:

* no ``pars-*`` parameter reference is asked of CRDS (there are none for
  these steps); parameters come from the spec, ASDF parameter files and the
  command line;
* no reference prefetch: the package's own references are ``override_<reftype>``
  files or documented packaged defaults, resolved by `SossStep.reference_path`;
* results are finalised without asking CRDS for its context.

The package logger (``jwst_soss_custom``) is added to stpipe's loggers so that
its messages reach the console and the ``cal_logs`` of the products.
"""

import logging
from inspect import signature
from os import PathLike
from os.path import abspath
from pathlib import Path
from typing import NamedTuple

from jwst.stpipe import Pipeline as _JwstPipeline
from jwst.stpipe import Step as _JwstStep
from stdatamodels.jwst.datamodels import JwstDataModel

from jwst_soss_custom import __version__
from jwst_soss_custom._base.atomic import atomic_path
from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.chunks import ChunkContext
from jwst_soss_custom.exposure import check_soss_model
from jwst_soss_custom.parallel import one_blas_thread
from jwst_soss_custom.statistics import ExposureStatistics

__all__ = ["ChunkInput", "SossStep", "SossPipeline"]

log = logging.getLogger(__name__)


class _SossMixin:
    """Offline-safe behaviour shared by `SossStep` and `SossPipeline`."""

    # Never ask CRDS for reference files before process(): our references
    # are overrides or packaged defaults.
    prefetch_references = False

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """Return an empty configuration: these steps have no CRDS ``pars-*`` files."""
        return cls._empty_config()

    def run(self, *args):
        """stpipe's ``run``, with BLAS on one thread (`~jwst_soss_custom.parallel.one_blas_thread`).

        Several input files (``strun ALIAS a.fits b.fits``) go to a
        ``process`` that takes them (``*more``: the pipelines, soss_combine);
        anywhere else they are refused by name, not with a TypeError.
        """
        # Only a file after the first input is looked at: run() is called for
        # every chunk and step, with the chunk's context as second argument.
        files = [a for a in args[1:] if isinstance(a, (str, PathLike))]
        if files and not any(p.kind is p.VAR_POSITIONAL
                             for p in signature(self.process).parameters.values()):
            raise SossInputError(
                f"{self.class_alias} reduces one input at a time but was given {len(args)} "
                f"files ({', '.join(str(a) for a in args)}): run it once per file, or give "
                "an exposure's segments to soss_spec2 or soss_tso3."
            )
        with one_blas_thread():
            return super().run(*args)

    @staticmethod
    def gather_inputs(input_data, more):
        """One input, or a list of every positional one (``strun ALIAS a.fits b.fits``)."""
        return [input_data, *more] if more else input_data

    @staticmethod
    def get_stpipe_loggers():
        """Add the package's logger to the ones stpipe configures."""
        return (*_JwstStep.get_stpipe_loggers(), "jwst_soss_custom")

    def save_model(self, model, suffix=None, idx=None, output_file=None, force=False,
                   **components):
        """stpipe's ``save_model``, writing a single model through a temporary file.

        A run killed while a product is written leaves no partial file under
        its final name (`~jwst_soss_custom._base.atomic.atomic_path`). The
        output name is found as stpipe finds it; containers go to stpipe.
        """
        if not isinstance(model, JwstDataModel):
            return super().save_model(model, suffix=suffix, idx=idx, output_file=output_file,
                                      force=force, **components)
        if not force and not self.save_results and not output_file:
            return None
        if self.output_use_model or (output_file is None and not self.search_output_file):
            output_file, idx = model.meta.filename, None
        path = self.make_output_path(basepath=output_file, suffix=suffix, idx=idx, **components)
        with atomic_path(path) as temporary:
            model.save(temporary)
        log.info("Saved model in %s", path)
        return str(path)

    def reference_path(self, reftype, default=None, record=True):
        """Resolve a reference file without CRDS.

        Parameters
        ----------
        reftype : str
            Reference type, e.g. ``"bkg"``; the user gives it as
            ``override_<reftype>``.
        default : str or None
            Packaged default used when no override is given.
        record : bool
            Record it among the references the step's product used (only
            while the step runs: ``prepare_exposure`` resolves it before).

        Returns
        -------
        str or None
            Absolute path of the override or the default, or None when there
            is neither (the step then decides whether that is an error).
        """
        override = self.get_ref_override(reftype)
        if override in (None, "", "N/A"):
            path = default
        else:
            path = override
        if path is None:
            return None
        if isinstance(path, str):
            path = abspath(path)
        if record:
            # An open datamodel given as override is used as it is.
            self._reference_files_used.append(
                (reftype, path if isinstance(path, str) else "datamodel")
            )
        return path

    def open_ramp(self, input_data):
        """A SOSS ramp (uncal, or from the Detector1 steps) as a checked `RampModel`.

        Parameters
        ----------
        input_data : str, Path or RampModel

        Returns
        -------
        RampModel

        Raises
        ------
        SossInputError
            If the input is not a 4-D SUBSTRIP256 SOSS ramp.
        """
        try:
            model = self.prepare_output(input_data, open_as_ramp=True)
        except ValueError as err:
            name = getattr(input_data, "name", None) or Path(str(input_data)).name
            raise SossInputError(
                f"{name}: expected a 4-D ramp (nints, ngroups, 256, 2048); give the "
                f"*_uncal.fits file ({err})."
            ) from None
        check_soss_model(model, ndim=4)
        return model

    def finalize_result(self, result, reference_files_used):
        """Record versions and references used, without contacting CRDS."""
        if not isinstance(result, JwstDataModel):
            return
        from jwst import __version__ as jwst_version

        result.meta.calibration_software_version = jwst_version
        result.meta.calibration_software_revision = f"jwst_soss_custom {__version__}"
        for ref_name, filename in reference_files_used:
            node = getattr(result.meta.ref_file, ref_name, None)
            if node is not None:
                node.name = filename


class ChunkInput(NamedTuple):
    """What a step works on: see `SossStep.open_chunk`."""

    model: JwstDataModel
    statistics: ExposureStatistics
    cache: dict
    core: slice


class SossStep(_SossMixin, _JwstStep):
    """Base class of the package's steps (offline, no CRDS parameter references).

    A step's ``process(input_data, context=None)`` takes the cube and,
    inside `soss_spec2`, the chunk's `~jwst_soss_custom.chunks.ChunkContext`;
    on its own (``strun``, ``Step.call``) it makes the context of its input.
    A step declares what it needs of the time series (`time_halo`,
    `needs_whole_series`); the pipeline asks it instead of knowing.
    """

    def record_step_status(self, model, status="COMPLETE"):
        """Set ``meta.cal_step.<alias>`` on a model (COMPLETE or SKIPPED)."""
        setattr(model.meta.cal_step, self.class_alias, status)

    def open_chunk(self, input_data, context=None, *, require_pwcpos=True, make_copy=None):
        """The step's opening: the model checked, the exposure prepared, what the step needs.

        Parameters
        ----------
        input_data : str or CubeModel
        context : `~jwst_soss_custom.chunks.ChunkContext` or None
            Given by `soss_spec2`; None makes the context of the input alone.
        require_pwcpos : bool
            Whether the step needs the pupil-wheel position (traces).
        make_copy : bool or None
            As `jwst.stpipe.Step.prepare_output`.

        Returns
        -------
        ChunkInput
            The model, the exposure statistics as the step received them
            (`prepare_exposure` has handed on its own to ``context``), this
            step's exposure-level results and the chunk's own integrations.
        """
        model = self.prepare_output(input_data, make_copy=make_copy)
        check_soss_model(model, require_pwcpos=require_pwcpos, frame=True,
                         placed=context is not None)
        if context is None:
            context = ChunkContext.standalone(model)
        received = context.statistics
        self.prepare_exposure(context, model)
        return ChunkInput(model, received, context.step_cache(self.class_alias), context.core)

    def prepare_exposure(self, context, model):
        """Compute what the step derives from the exposure alone, once per exposure.

        The results go to ``context.step_cache(alias)``; a step that changes
        the data also replaces ``context.statistics`` by those of its output.
        `soss_spec2` calls this for every step before any chunk runs, so
        the work is done once and shared by all its processes; a step run on
        its own calls it from `open_chunk`. Calling it again with a filled
        cache only hands the statistics on.

        Parameters
        ----------
        context : `~jwst_soss_custom.chunks.ChunkContext`
        model : CubeModel
            A cube of the exposure, or only its metadata (no arrays).
        """

    def time_halo(self):
        """Neighbouring integrations the step needs on each side of a chunk.

        Returns
        -------
        int
            0 here: the step works on each integration alone.
        """
        return 0

    def needs_whole_series(self):
        """Whether the step must see every integration of the exposure at once.

        Returns
        -------
        bool
            False here.
        """
        return False


class SossPipeline(_SossMixin, _JwstPipeline):
    """Base class of the package's pipelines (offline, no CRDS parameter references)."""

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """Return an empty configuration (with a ``steps`` section) without CRDS."""
        return cls._empty_config()

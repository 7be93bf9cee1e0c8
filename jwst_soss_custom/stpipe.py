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
from os.path import abspath

from jwst.stpipe import Pipeline as _JwstPipeline
from jwst.stpipe import Step as _JwstStep
from stdatamodels.jwst.datamodels import JwstDataModel

from jwst_soss_custom import __version__

__all__ = ["SossStep", "SossPipeline", "chunk_core"]

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

    @staticmethod
    def get_stpipe_loggers():
        """Add the package's logger to the ones stpipe configures."""
        return (*_JwstStep.get_stpipe_loggers(), "jwst_soss_custom")

    def reference_path(self, reftype, default=None):
        """Resolve a reference file without CRDS.

        Parameters
        ----------
        reftype : str
            Reference type, e.g. ``"bkg"``; the user gives it as
            ``override_<reftype>``.
        default : str or None
            Packaged default used when no override is given.

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
        if path is not None and not isinstance(path, str):
            # An open datamodel given as override: use it as is.
            self._reference_files_used.append((reftype, "datamodel"))
            return path
        if path is not None:
            path = abspath(path)
            self._reference_files_used.append((reftype, path))
        return path

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


class SossStep(_SossMixin, _JwstStep):
    """Base class of the package's steps (offline, no CRDS parameter references)."""

    def record_step_status(self, model, status="COMPLETE"):
        """Set ``meta.cal_step.<alias>`` on a model (COMPLETE or SKIPPED)."""
        setattr(model.meta.cal_step, self.class_alias, status)

    def exposure_cache(self, stats):
        """What this step derives from one exposure's statistics, computed once.

        `soss_spec2` may run a step on several chunks of integrations of one
        exposure; they carry the same `ExposureStatistics` object, so results
        that depend only on it (outlier maps, scales, traces, profiles) are
        kept here and reused until other statistics come.

        Parameters
        ----------
        stats : `~jwst_soss_custom.statistics.ExposureStatistics`

        Returns
        -------
        dict
        """
        if getattr(self, "_cache_key", None) is not stats:
            self._cache_key, self._cache = stats, {}
        return self._cache


def chunk_core(model):
    """Integrations of a chunk that belong to it (the rest are neighbours, read as context).

    Parameters
    ----------
    model : JwstDataModel

    Returns
    -------
    slice
    """
    return getattr(model, "_soss_core", slice(None))


class SossPipeline(_SossMixin, _JwstPipeline):
    """Base class of the package's pipelines (offline, no CRDS parameter references)."""

    @classmethod
    def get_config_from_reference(cls, dataset, disable=None, crds_observatory=None):
        """Return an empty configuration (with a ``steps`` section) without CRDS."""
        return cls._empty_config()

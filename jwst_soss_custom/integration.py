"""stpipe entry point: the Steps and Pipelines this package provides."""

__all__ = ["get_steps"]


def get_steps():
    """Describe the package's stpipe classes for the ``stpipe.steps`` entry point.

    Returns
    -------
    list of tuple (str, str, bool)
        Fully qualified class name, class alias, and whether it is a Pipeline.
        ``tests/test_integration.py`` keeps this list in sync with the classes;
        it is written out (not discovered) so that ``strun --help`` stays fast.
    """
    return [
        ("jwst_soss_custom.badpix.SossBadpixStep", "soss_badpix", False),
        ("jwst_soss_custom.background.SossBackgroundStep", "soss_background", False),
        ("jwst_soss_custom.tracing.SossTracingStep", "soss_tracing", False),
        ("jwst_soss_custom.oneoverf.SossOneOverFStep", "soss_oneoverf", False),
        ("jwst_soss_custom.extract.SossExtractStep", "soss_extract", False),
        ("jwst_soss_custom.extract.SossPhotomStep", "soss_photom", False),
        ("jwst_soss_custom.lightcurves.SossLightCurvesStep", "soss_lightcurves", False),
        ("jwst_soss_custom.fitting.SossFitStep", "soss_fit", False),
        ("jwst_soss_custom.fitting.SossCombineStep", "soss_combine", False),
        ("jwst_soss_custom.oneoverf.SossOneOverFGroupsStep", "soss_oneoverf_groups", False),
        ("jwst_soss_custom.pipeline.SossDetector1Pipeline", "soss_detector1", True),
        ("jwst_soss_custom.pipeline.SossSpec2Pipeline", "soss_spec2", True),
        ("jwst_soss_custom.pipeline.SossTso3Pipeline", "soss_tso3", True),
    ]

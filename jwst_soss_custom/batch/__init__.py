"""``soss_batch``: many SOSS exposures, each stage a task on a ``dask.distributed`` cluster.

See docs/batch.md.
"""

from jwst_soss_custom.batch.exposures import Exposure, find_exposures
from jwst_soss_custom.batch.runner import SUMMARY_NAME, run_batch
from jwst_soss_custom.batch.stages import STAGES, StageResult, run_stage

__all__ = ["Exposure", "STAGES", "SUMMARY_NAME", "StageResult", "find_exposures", "run_batch",
           "run_stage"]

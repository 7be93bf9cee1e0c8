"""Cut an exposure into chunks of integrations, and what a chunk carries to the steps.

`soss_spec2` holds one chunk of integrations (plus a few neighbours on each
side for the running medians in time) at a time, and reads the exposure-level
statistics band of detector rows by band. `MemoryBudget` turns the user's
``memory_limit`` into both sizes from measured costs; `plan_chunks` cuts every
segment into nearly equal chunks (a chunk never spans two segments, so each
segment's products are complete when its last chunk is done).

`ChunkContext` is the contract between the pipeline and its steps: what a
step may know of the exposure beyond the chunk of integrations it is given.
"""

import math
from dataclasses import dataclass, field

from jwst_soss_custom._base.errors import SossInputError
from jwst_soss_custom.statistics import ExposureStatistics, cube_statistics

__all__ = ["ChunkContext", "MemoryBudget", "RampBudget", "plan_chunks"]


@dataclass
class ChunkContext:
    """What a step knows of the exposure beyond the chunk of integrations it is given.

    `soss_spec2` makes one per chunk and passes it to each step's ``run``
    after the chunk; a step run on its own makes one for its input
    (`standalone`), which is then the whole exposure.

    Attributes
    ----------
    statistics : `~jwst_soss_custom.statistics.ExposureStatistics` or None
        The exposure's per-pixel statistics as the step should see them
        (None for the ramps of `soss_detector1`, whose steps need none). A
        step that changes the data (bad pixels replaced, background
        subtracted) replaces them by the statistics of its output, for the
        steps after it.
    core : slice
        Integrations of the chunk that belong to it; the others are
        neighbours read as context for running medians in time (each step
        declares how many it needs: ``time_halo``).
    cache : dict
        Results derived from the exposure alone (outlier maps, scales,
        traces), by step alias (`step_cache`): computed by a step for the
        first chunk, reused for the others. One dict per exposure and
        process.
    results : dict
        What a step leaves of this chunk, by step alias, for the pipeline
        to gather over all chunks (the 1/f step's leak sums in
        `soss_detector1`).
    """

    statistics: ExposureStatistics
    core: slice = field(default_factory=lambda: slice(None))
    cache: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)

    @classmethod
    def standalone(cls, model):
        """The context of a cube that is a whole exposure (a step run on its own).

        Parameters
        ----------
        model : CubeModel

        Returns
        -------
        ChunkContext
        """
        return cls(cube_statistics(model))

    def step_cache(self, alias):
        """The exposure-level results of one step (a dict it fills and reuses).

        Parameters
        ----------
        alias : str
            The step's class alias.

        Returns
        -------
        dict
        """
        return self.cache.setdefault(alias, {})

    def __repr__(self):
        # stpipe logs a step's arguments: a summary, not the arrays.
        nints = getattr(self.statistics, "nints", None)
        return f"ChunkContext(nints={nints}, core={self.core}, cached={sorted(self.cache)})"

GB = 1e9
#: Memory in use before any array is read: Python, jwst and stpipe loaded,
#: statistics and trace models (measured: ~0.45 GB), with a margin.
BASE_BYTES = 0.6 * GB
#: Memory of a forked worker process of its own (interpreter state it
#: touches; the parent's arrays are shared until written).
WORKER_BYTES = 0.2 * GB
#: Bytes per pixel of one integration while a chunk runs through the steps:
#: SCI, ERR and DQ (12) plus the steps' largest temporaries (measured on the
#: full preset: peak grows by ~18 bytes per pixel of the chunk), plus the
#: x1dints rows kept until the segment is done.
CHUNK_BYTES_PER_PIXEL = 20
#: Bytes per pixel of a band of rows while the statistics are computed: the
#: three arrays read (12), the masked copy, the mask, the ERR sample, the
#: differences and the medians' working copies (with a margin).
BAND_BYTES_PER_PIXEL = 30


@dataclass
class MemoryBudget:
    """Chunk and band sizes for a memory limit.

    Parameters
    ----------
    limit_gb : float
        Memory the reduction may use, in GB (1e9 bytes).
    nints : int
        Integrations in the exposure.
    frame_shape : tuple of int
        (ny, nx).
    processes : int
        Processes holding a chunk (or a band) at the same time.

    Attributes
    ----------
    chunk_integrations : int
        Largest number of integrations (neighbours included) held at a time.
    band_rows : int
        Detector rows per band for the exposure statistics.
    """

    limit_gb: float
    nints: int
    frame_shape: tuple
    processes: int = 1

    def __post_init__(self):
        ny, nx = self.frame_shape
        # Each process's share; forked workers add their own interpreter state.
        free = (self.limit_gb * GB - BASE_BYTES - (self.processes - 1) * WORKER_BYTES)
        free /= self.processes
        per_int = CHUNK_BYTES_PER_PIXEL * ny * nx
        per_row = BAND_BYTES_PER_PIXEL * nx * self.nints
        if free < 8 * per_int or free < per_row:
            need = (BASE_BYTES + (self.processes - 1) * WORKER_BYTES
                    + self.processes * max(8 * per_int, per_row))
            raise SossInputError(
                f"memory_limit={self.limit_gb} GB is too small for this exposure "
                f"({self.nints} integrations, {self.processes} process(es)): it needs at "
                f"least {need / GB:.2f} GB (8 integrations at a time, and one detector "
                "row over all integrations, per process). Raise memory_limit or lower "
                "processes."
            )
        self.chunk_integrations = int(free // per_int)
        self.band_rows = int(max(1, min(32, free // per_row)))

    def required_gb(self, nints):
        """Memory limit (GB) under which one process holds ``nints`` integrations at once.

        Parameters
        ----------
        nints : int

        Returns
        -------
        float
        """
        ny, nx = self.frame_shape
        return (BASE_BYTES + nints * CHUNK_BYTES_PER_PIXEL * ny * nx) / GB


#: Bytes per value (pixel and group) of a chunk of ramps while the official
#: Detector1 steps and ramp_fit run on it: the float32 groups, the group DQ
#: and the steps' temporaries (jump's differences and their medians,
#: ramp_fit's per-group arrays); measured on the realistic preset (see
#: docs/performance.md), with a margin.
RAMP_BYTES_PER_VALUE = 28
#: Bytes per pixel of one integration of a segment's rateints while its
#: chunks are collected: SCI, ERR, VAR_POISSON, VAR_RNOISE (float32) and DQ.
RATEINTS_BYTES_PER_PIXEL = 20
#: Fewest integrations per chunk for which a second process is worth it.
MIN_RAMP_CHUNK = 8


@dataclass
class RampBudget:
    """Chunk sizes of ramps for a memory limit (`soss_detector1`).

    Each process holds one chunk of ramps at a time plus the rateints of the
    segment it is completing; before the chunks, the parent alone holds the
    integrations sampled for the exposure-level star model.

    Parameters
    ----------
    limit_gb : float
        Memory the reduction may use, in GB (1e9 bytes).
    ngroups : int
    frame_shape : tuple of int
    segment_integrations : int
        Integrations of the longest segment.
    processes : int
        Processes wanted; fewer are used if the limit does not allow them.

    Attributes
    ----------
    processes : int
        Processes that fit the limit.
    chunk_integrations : int
        Most integrations of ramps per chunk.
    sample_integrations : int
        Most integrations the exposure-level star model may hold (their
        corrected groups and flags, while a chunk of them runs through the
        steps before the 1/f step).
    """

    limit_gb: float
    ngroups: int
    frame_shape: tuple
    segment_integrations: int
    processes: int = 1

    def __post_init__(self):
        pixels = self.frame_shape[0] * self.frame_shape[1]
        per_int = RAMP_BYTES_PER_VALUE * self.ngroups * pixels
        held = RATEINTS_BYTES_PER_PIXEL * pixels * self.segment_integrations
        for processes in range(max(1, self.processes), 0, -1):
            free = (self.limit_gb * GB - BASE_BYTES - (processes - 1) * WORKER_BYTES)
            chunk = int((free / processes - held) // per_int)
            # Another process only pays if its chunks are not tiny: each
            # chunk costs every step's fixed overhead (~2 s a chunk).
            if chunk >= (MIN_RAMP_CHUNK if processes > 1 else 1):
                break
        else:
            need = (BASE_BYTES + held + per_int) / GB
            raise SossInputError(
                f"memory_limit={self.limit_gb} GB is too small for these ramps "
                f"({self.ngroups} groups, segments of up to {self.segment_integrations} "
                f"integrations): one process needs at least {need:.2f} GB (one integration "
                "of ramps and the rateints of one segment). Raise memory_limit."
            )
        self.processes = processes
        self.chunk_integrations = min(chunk, self.segment_integrations)
        # The sample keeps float32 groups and their flags (5 bytes a value)
        # while one chunk of it at a time runs through the first steps.
        kept = (4 + 1) * self.ngroups * pixels
        alone = self.limit_gb * GB - BASE_BYTES - min(chunk, self.segment_integrations) * per_int
        self.sample_integrations = max(2, int(alone // kept))


def plan_chunks(segments, size, halo=0):
    """Integration ranges of the chunks: every segment cut into nearly equal parts.

    Parameters
    ----------
    segments : list of `~jwst_soss_custom.exposure.SegmentInfo`
        The exposure's segments, in time order.
    size : int
        Most integrations held at a time, ``halo`` neighbours on each side
        included.
    halo : int
        Neighbouring integrations read on each side of a chunk.

    Returns
    -------
    list of (int, int)
        ``(start, stop)`` of each chunk in the exposure (0-based, stop exclusive).
    """
    core = max(1, size - 2 * halo)
    chunks = []
    for segment in segments:
        n = segment.stop - segment.start
        parts = math.ceil(n / core)
        edges = [segment.start + round(k * n / parts) for k in range(parts + 1)]
        chunks += list(zip(edges[:-1], edges[1:]))
    return chunks

"""``pocketgan run``:

data → teacher → features → students → (prune) → profile → export → bench → eval → report.

The run is driven by one validated :class:`~pocketgan.config.RunConfig`, written to
``RUN/recipe.yaml`` before the first stage. Expensive stages (dataset, teacher, feature
network, students, pruned model) are content-addressed: their output lives under
``$POCKETGAN_CACHE/pipeline/<stage>/<key>``, the key hashing the stage's resolved settings,
its inputs' keys and the version of the code that builds it (:mod:`pocketgan.pipeline.cache`),
so a second run reuses what it already built and only changed stages run again; an
interrupted training stage resumes from its checkpoint. The run directory gets copies of the
model directories, the ONNX files, ``stages.json``, ``results.json``, ``report.md``,
``grid.png`` and ``pareto.png``. ``--only STAGE`` / ``--from STAGE`` re-run part of a run.

Modules: :mod:`~pocketgan.pipeline.run` (orchestration), :mod:`~pocketgan.pipeline.stages`
(cached stages), :mod:`~pocketgan.pipeline.measure` (profile, export, bench, eval),
:mod:`~pocketgan.pipeline.reporting` and :mod:`~pocketgan.pipeline.reproduce` (the report),
:mod:`~pocketgan.pipeline.records` (one typed record per model), :mod:`~pocketgan.pipeline.cache`.
"""

from pocketgan.pipeline.run import STAGE_NAMES, run_pipeline

__all__ = ["STAGE_NAMES", "run_pipeline"]

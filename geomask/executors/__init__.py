"""Executors: where the window tasks of planned scenes run.

An executor takes planned scenes (:class:`geomask.engine.plan.ScenePlan`) and runs their pure window
tasks (:func:`geomask.engine.task.compute_window`), handing the results back to this process in
window order, where each output has exactly one writer (several processes writing one compressed
GeoTIFF lose tiles). :mod:`geomask.executors.local` runs windows on a pool of threads or processes
kept for the whole run; :mod:`geomask.executors.scenes` keeps two small scenes of a local run in flight;
:mod:`geomask.executors.distributed` runs many scenes on a dask.distributed cluster, window by window.
:mod:`geomask.executors.scene_tasks` runs a batch on a cluster scene by scene instead: each output
written by one worker (:func:`geomask.scene_task.write_scene`), only reports coming back.
:mod:`geomask.executors.factory` starts any dask cluster manager named by import path, and
:mod:`geomask.executors.reach` checks that the workers see the run's paths. The facade that picks
one for a scene is :func:`geomask.process.process_scene`; for a batch, :func:`geomask.pipeline.run_pipeline`.
"""

"""Executors: where the window tasks of planned scenes run.

An executor takes planned scenes (:class:`geomask.engine.plan.ScenePlan`) and runs their pure window
tasks (:func:`geomask.engine.task.compute_window`), handing the results back to this process in
window order, where each output has exactly one writer (several processes writing one compressed
GeoTIFF lose tiles). :mod:`geomask.executors.local` runs windows on a pool of threads or processes
kept for the whole run; :mod:`geomask.executors.scenes` keeps two small scenes of a local run in flight;
:mod:`geomask.executors.distributed` runs many scenes on a dask.distributed cluster. The facade that
picks one is :func:`geomask.process.process_scene`.
"""

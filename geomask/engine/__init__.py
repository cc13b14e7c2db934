"""The windowed engine: one scene through a list of steps, window by window, in parallel.

Strategy
--------
The scene is cut into windows aligned to the input's blocks (and the output's
tiles). Each window is one pure task, :func:`geomask.engine.task.compute_window`, that opens the
scene itself, reads what it needs and returns the finished pixels of its window
for every band; the process that drives the run is the only writer of the
output file (several processes writing one compressed GeoTIFF lose tiles).

Halos and steps. A step's kernel needs a halo of its half-size around every
pixel it computes. For the last step that is the window itself; for step k the
rows (and, independently, the columns) it must produce are those step k+1
reads, after the boundary mode maps positions beyond the scene edge back onto
scene pixels (:func:`geomask.windows.expand`). Working backwards from the window
gives, for every step, the sorted set of scene rows and columns it computes;
the first step reads the scene at its sets. Inner windows thus read plain
neighbours, edge windows read what the mode says (``wrap`` reads the far
side), and every pixel is computed from exactly the values the whole-image
computation would use, in the same summation order: the tiled result equals the
whole-image :func:`geomask.masked_convolve`, byte for byte, for any window size.

Skipping. Masks render before pixels are read. A window in which no step
selects a pixel (of what that step computes) is read once, without halo, and
passed through; its pixels are never filtered.

Parallelism. Tasks run on dask's local schedulers (threads by default, or
processes) in bounded batches; the next batch computes while the driver writes
the previous one, so at most two batches of windows are in memory. Tasks are pure, so a task run
twice gives the same bytes. On a dask.distributed cluster
(:mod:`geomask.executors.distributed`) the same tasks run on the workers and their results
stream back to this process, still the only writer; a scene there is split in
two halves, :func:`geomask.engine.plan.plan_scene` (inspect, bind, plan the windows and the writer)
and :class:`~geomask.engine.plan.ScenePlan`'s writing methods, so windows of many scenes can be in
flight at once.

Modules
-------
:mod:`geomask.engine.task` (the pure window task), :mod:`geomask.engine.bind` (steps, nodata and
bands bound to a scene), :mod:`geomask.engine.plan` (windows and the writer's life cycle). This
package imports none of them, so importing one never loads the executors or the facade
(:func:`geomask.process.process_scene`).
"""

"""Writing outputs: one GeoTIFF or COG per scene, written to a temporary name and moved into place.

The writer, :class:`geomask.output.writer.OutputFile`, composes one module per concern:

- :mod:`~geomask.output.profile`: the creation profile of the output, from the scene and options;
- :mod:`~geomask.output.metadata`: band descriptions, colour, scale/offset, units and tags copied
  from the scene, and geomask's own tags written last;
- :mod:`~geomask.output.tilecopy`: which tiles were written, and the unchanged ones copied
  compressed from the input (:mod:`geomask.tiffraw`);
- :mod:`~geomask.output.cog`: the conversion to a Cloud Optimized GeoTIFF (stoppable by Ctrl-C
  through :mod:`~geomask.output.gdalcopy`);
- :mod:`~geomask.output.check`: the read-back check of a finished file, the disk-full diagnosis of
  a failed write, and the tags of a finished output (:func:`~geomask.output.check.read_tags`);
- :mod:`~geomask.output.staging`: temporary names, the sweep of a killed run's temporaries, the
  atomic rename, and staged uploads to ``s3://``.

This package imports none of its modules here, so importing one of them (the CLI imports
:mod:`~geomask.output.gdalcopy`) loads only what it needs.
"""

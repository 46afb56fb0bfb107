"""The batch job as a library: inputs, one explain-a-chunk step, records, overlays, outputs and
the report, run by the local runner (``local_runner``) or on Ray (``ray_runner``)."""

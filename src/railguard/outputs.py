"""Old import path of :mod:`railguard.batch.sinks`."""

from .batch.sinks import (OUTPUT_FORMATS, JsonlSink, ParquetSink, Sink, completed_rows, open_sink, output_format,
                          output_ids, output_row, parquet_schema, to_columns)

__all__ = ["OUTPUT_FORMATS", "JsonlSink", "ParquetSink", "Sink", "completed_rows", "open_sink", "output_format",
           "output_ids", "output_row", "parquet_schema", "to_columns"]

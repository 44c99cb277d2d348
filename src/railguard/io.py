"""Old import path of :mod:`railguard.batch.sources`."""

from .batch.sources import (SHARDABLE, Fields, Row, Shard, count_rows, file_format, iter_inputs, iter_shard,
                            plan_shards, row_to_input)

__all__ = ["SHARDABLE", "Fields", "Row", "Shard", "count_rows", "file_format", "iter_inputs", "iter_shard",
           "plan_shards", "row_to_input"]

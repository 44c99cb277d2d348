"""Moderating whole datasets: rows in, one verdict per row out, in order.

``core`` judges rows a batch at a time with each row isolated; ``local`` streams a file (or data in memory)
through it in this process; ``ray`` runs the same core on a Ray actor pool; ``sources`` reads the input formats
(and cuts them into shards), ``sinks`` writes JSONL / Parquet and finds where an interrupted run stopped.
"""

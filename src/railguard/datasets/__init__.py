"""The shared datasets (``<data_dir>/<name>/data.jsonl.gz``): reading them, and the split and dedup keys that
training and evaluation agree on. Sits under both :mod:`railguard.train` and :mod:`railguard.eval`."""

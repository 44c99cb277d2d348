"""Adapters that put railguard's rails into the libraries LLM apps already use, one module (and one extra) each.

Each is a thin layer over the one Guard contract (``load_guard(...).check(inputs)``) and the shared rail
decisions of :mod:`railguard.rails`; none holds model logic.
"""

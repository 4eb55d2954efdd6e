"""Benchmarks: each prints its figures and ratios against a baseline measured in the same run.

``make bench`` (``python -m bench``) runs them all and prints one table; see ``_report.py``.
"""

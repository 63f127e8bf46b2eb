"""Backends behind the Store protocol of `base.py`."""

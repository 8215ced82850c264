"""The quantitative core of Steward: pure functions over arrays and frozen models.

No network, no chain, no templates; never imports `governance`.
"""

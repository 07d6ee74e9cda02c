"""Plugins for every test: the harnesses in tests/support that provide fixtures.

They are registered here, at the top, so pytest rewrites their assertions and their
fixtures reach every test module that imports helpers from them.
"""

pytest_plugins = [
    "tests.support.prometheus",
    "tests.support.kube",
    "tests.support.store",
]

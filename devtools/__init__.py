"""Tools that run the whole product against the emulators: the demo, the chaos runner and
the harness they share with the tests and benchmarks (``open_tree``).

Not part of the product: no service imports this package. It may import every package.
"""

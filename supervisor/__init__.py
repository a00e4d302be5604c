"""The process tree: spawns the worker and the gateways, restarts what dies, reports status.

Also home of the ``mmclaude`` command line and configuration loading.
"""

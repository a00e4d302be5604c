"""A fake Claude Code CLI speaking stream-json on stdin/stdout, for tests, demo and benchmarks.

Run it as `python -m emulators.claude` (or `fake-claude`) with the real CLI's flags. Prompts
steer it with keywords (SLOW:s, HANG, CRASH, CRASHONCE, LONG:k, ERROR, TOOL, GARBAGE); README.md
and `engine.py` describe them. Nothing here is imported at startup beyond what `__main__` needs.
"""

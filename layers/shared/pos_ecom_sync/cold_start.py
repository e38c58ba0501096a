"""A function's cold start without garbage-collection passes: each handler imports this module before anything else
and calls `finished()` as the last line of its module.

What a cold start allocates lives as long as the sandbox (modules, classes, their validators and schemas): of the
~55,000 objects the collector tracks after a handler's import, ~560 are garbage. Its 38-44 passes while the module
loads cost 17-25 ms of each start (medians of 9 interleaved starts with and without them, 2-core host).
`finished()` moves every object made so far to the permanent generation (`gc.freeze`) before it turns collection
back on: otherwise the first collection walks them all (about as long as the passes saved), and every full
collection in a warm invocation again.

Once per process: the first handler loaded does this, and in a process that loads several (tests, the local stack)
the others change nothing. Frozen objects are never collected: the start's few hundred garbage objects stay for the
sandbox's life (a collection to drop them would cost about what the passes did), as would a cycle of frozen objects
that became garbage later. A handler whose import fails leaves collection off, in a sandbox Lambda then discards
(an init error ends it).
"""

from __future__ import annotations

import gc

# False when collection was already off (a caller chose that): it is then left as the caller set it.
_collecting_after = gc.isenabled()
gc.disable()


def finished() -> None:
    """The handler module has loaded: freeze what it made and collect again (once per process)."""
    global _collecting_after
    if _collecting_after:
        _collecting_after = False
        gc.freeze()
        gc.enable()

"""Reconciliation: a scheduled full compare that repairs the drift missed webhooks and deltas left behind.

It never syncs anything itself. It reads both sides cheaply (version-paged POS products, `since_id`-paged eCom
variants, recent eCom orders), compares them with the sync state, and queues a change message (via "reconcile")
for each entity that drifted; the ordinary workers then re-read the truth and repair it, idempotently.

- `rules`: the pure comparisons (state + vendor rows -> drift findings) and the run/checkpoint rules.
- `service`: the `Reconciler` that pages the vendors, publishes, and moves the checkpoint.

Trigger model: the schedule fires every 15 minutes. A run starts when the last completed run (or, for a new
connection, its creation: the poller's feed is the initial import) is older than `RECONCILE_INTERVAL_HOURS`;
otherwise an unfinished run continues from its checkpoint, and a finished one waits. Each invocation stops
cleanly before the Lambda's time runs out, when the shared rate budget says wait, or when a queue's backlog is
full, and the next tick resumes from the checkpoint. So a 70,000-variant catalog is compared in chunks spread
over several ticks, always at catalog (low) priority.
"""

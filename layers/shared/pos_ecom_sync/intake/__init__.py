"""Change intake: webhooks (hints that arrive fast) and the poller (the sweep that misses nothing)."""

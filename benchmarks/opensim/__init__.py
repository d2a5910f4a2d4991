"""Open-loop session simulator: many keep-alive sessions sending a request mix at a set rate,
latency measured from the intended send time (no coordinated omission)."""

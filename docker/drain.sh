#!/bin/sh
# preStop hook of the capture worker: start the drain now (SIGTERM to the worker, through tini),
# during which every capture session swaps to an instance on another worker (HotPotato's rolling
# swap: overlap, align, cut over; no audio lost), and wait for the worker to exit. Kubernetes sends
# its own SIGTERM only after this returns, within terminationGracePeriodSeconds.
set -eu
limit="${DRAIN_TIMEOUT_S:-120}"
worker="$(pgrep -o -f 'katopotato worker' || true)"
[ -n "$worker" ] || exit 0
kill -TERM "$worker"
waited=0
while kill -0 "$worker" 2>/dev/null && [ "$waited" -lt "$limit" ]; do
  sleep 1
  waited=$((waited + 1))
done

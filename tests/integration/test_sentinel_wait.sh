# test_sentinel with every admission and settle confirmed on the replica
# (--wait-replicas 1): the master SIGKILLed mid-run loses nothing.
SENTINEL_WORKER_ARGS="--wait-replicas 1"
. "$(dirname "$0")/test_sentinel.sh"

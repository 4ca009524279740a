# test_fleet_spend under the other reading of the docs: rate-limit headers
# stamped at admission, output charged from max_tokens (the 2025 rule).
SPEND_FAKE_ARGS="--headers-at admit --otpm-mode reserve"
. "$(dirname "$0")/test_fleet_spend.sh"

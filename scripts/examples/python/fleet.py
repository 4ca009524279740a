"""fleet.py — what the Python examples share: the fleet's key names from the
environment (LLMFLEET_REDIS_URL, LLMFLEET_FLEET) and a result entry as JSON."""
import json
import os

REDIS_URL = os.environ.get("LLMFLEET_REDIS_URL", "redis://127.0.0.1:6379/0")
FLEET = os.environ.get("LLMFLEET_FLEET", "default")
JOBS = f"llmfleet:{{{FLEET}}}:jobs"  # the {FLEET} hash tag is part of the name
RESULTS = f"llmfleet:{{{FLEET}}}:results"
NUMBERS = {"attempts", "latency_ms", "http_status", "input_tokens", "output_tokens",
           "cache_creation_input_tokens", "cache_read_input_tokens"}


def result_json(stream_id, fields):
    """One stream entry as a dict: JSON fields parsed, counts as numbers."""
    out = {"stream_id": stream_id}
    for k, v in fields.items():
        if k in ("response", "meta") and v:
            v = json.loads(v)
        elif k in NUMBERS and v.isdigit():
            v = int(v)
        out[k] = v
    return out

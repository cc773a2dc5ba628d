"""A batch job with the edge SDK: pick an e-mail subject line for each of 10,000 users.

No web app here, so no middleware: the job fetches the signed snapshot once,
decides every user locally (a user keeps the arm the middleware would give
them for the same snapshot), "sends" the mail, reports the opens as rewards
and pushes its pulls and rewards to the server as one more replica. The
opens are simulated from hidden rates so the example runs on its own.

Set up a server (once), then run the job:

    mabware keygen --signing > signing.json
    mabware serve --store file:./mabware.state --signing-key-file signing.json \\
        --token WRITE --push-token PUSH &
    curl -X POST localhost:8000/experiments -H 'Authorization: Bearer WRITE' \\
        -H 'Content-Type: application/json' \\
        -d '{"experiment_id": "subject", "arm_ids": ["plain", "question", "emoji"]}'
    MABWARE_URL=http://127.0.0.1:8000 MABWARE_PUBLIC_KEY=<public_key from signing.json> \\
        MABWARE_PUSH_TOKEN=PUSH MABWARE_READ_TOKEN=WRITE python edge_job.py

It prints one line per arm and a JSON summary, and exits 1 when it could
not get a snapshot or the experiment does not exist.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import Counter

from mabware_edge import EdgeClient

EXPERIMENT = "subject"
#: what only the simulation knows: how often each subject line is opened
OPEN_RATES = {"plain": 0.18, "question": 0.22, "emoji": 0.30}


def main() -> int:
    url = os.environ.get("MABWARE_URL", "http://127.0.0.1:8000")
    users = int(os.environ.get("EDGE_JOB_USERS", "10000"))
    edge = EdgeClient(
        f"{url}/edge/snapshot",
        public_key=os.environ["MABWARE_PUBLIC_KEY"],
        read_token=os.environ.get("MABWARE_READ_TOKEN"),
        push_url=f"{url}/sync",
        push_token=os.environ.get("MABWARE_PUSH_TOKEN"),
        refresh="manual",  # a job: one fetch before the batch, one push after it
    )
    with edge:
        if not edge.refresh():
            print(f"no snapshot from {url}: is the server up and signing?", file=sys.stderr)
            return 1
        opens = random.Random(os.environ.get("EDGE_JOB_SEED", "2026"))
        sent: Counter[str] = Counter()
        opened: Counter[str] = Counter()
        for user in range(users):
            d = edge.decide(EXPERIMENT, unit_id=f"user-{user}")
            if d.arm is None:  # reason "unknown_experiment": nothing to choose from
                print(f"{EXPERIMENT!r} is not in the snapshot: create it first", file=sys.stderr)
                return 1
            sent[d.arm] += 1
            # ... send the mail with subject d.value (or d.arm) to this user ...
            if opens.random() < OPEN_RATES.get(d.arm, 0.0):
                opened[d.arm] += 1
                edge.reward(d.decision_id, 1.0)  # in real life: when the open pixel is fetched
        pushed = edge.push()
    for arm in sorted(sent):
        print(f"{arm:10} sent {sent[arm]:6}  opened {opened[arm]:5}")
    summary = {"sent": dict(sent), "opened": dict(opened), "pushed": pushed}
    print(json.dumps(summary, sort_keys=True))
    return 0 if pushed else 1


if __name__ == "__main__":
    sys.exit(main())

"""Run by test_search.py in its own process: a search on a two-node Ray cluster on 127.0.0.1
(``ray.cluster_utils.Cluster``), joined through ``address`` as a user's cluster would be."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ray.cluster_utils import Cluster  # noqa: E402

from nas.budget import parse_budget  # noqa: E402
from nas.run import run_search  # noqa: E402
from tests.conftest import tiny_search_config  # noqa: E402

ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")  # Cluster() always writes it


def main(out: str, temp_dir: str) -> None:
    ADDRESS_FILE.parent.mkdir(exist_ok=True)
    had_file = ADDRESS_FILE.exists()
    node = {"num_cpus": 1, "object_store_memory": 100 * 2**20, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "temp_dir": temp_dir})
    cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20, temp_dir=temp_dir)
    cluster.wait_for_nodes()
    try:
        config = tiny_search_config(
            address=cluster.address,
            workers=2,
            max_children=4,
            child_steps=40,
            controller="random",
            budget="30cpu-minutes",  # max_children ends it, however loaded the machine
        )
        summary = run_search(config, Path(out), parse_budget(config.budget))
        print(json.dumps({"children": summary["children"]}))
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
        if not had_file:  # a stale address file breaks later local ray.init calls
            ADDRESS_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

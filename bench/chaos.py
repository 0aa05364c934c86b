"""The long chaos run: `.venv/bin/python bench/chaos.py [--complaints 20000]`.

Same harness and checks as tests/test_chaos.py (tests/support/chaos.py), more
complaints and more kills; prints the counts and exits non-zero if an invariant broke
or a complaint was never accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from awasi.embedded import EmbeddedStack  # noqa: E402
from tests.support.chaos import run_chaos  # noqa: E402
from tests.support.stack import PostgresCluster  # noqa: E402


async def main_async(complaints: int, concurrency: int) -> int:
    root = Path(tempfile.mkdtemp(prefix="awx-", dir="/tmp"))
    stack = EmbeddedStack(root)  # stops PostgreSQL again if the broker fails to start
    stack.start()
    pg, broker = stack.postgres, stack.broker
    try:
        cluster = PostgresCluster(pg)
        await cluster.create_template()
        name = await cluster.create_database()
        try:
            report = await run_chaos(cluster.dsn(name), broker, complaints=complaints,
                                     concurrency=concurrency, converge_timeout_s=600,
                                     bot_complaints=complaints // 50)
        except AssertionError as e:
            print(f"INVARIANT BROKEN: {e}")
            return 1
        print("\n".join(report.lines()))
        print(f"throughput under chaos: {report.accepted / report.seconds:.0f} complaints/s")
        if report.failed:
            # A careful client (same Idempotency-Key on every retry) or a patient
            # citizen in the bot should always get through: tests/test_chaos.py fails.
            print(f"FAILURE: {report.failed} complaints never accepted")
            return 1
        return 0
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--complaints", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    sys.exit(asyncio.run(main_async(args.complaints, args.concurrency)))


if __name__ == "__main__":
    main()

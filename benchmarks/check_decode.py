"""Check that RecordDecoder's paths decode alike, over more pages than the test suite does.

    python benchmarks/check_decode.py [--pages 3000] [--seed 1]

The check itself is `cg_assets_tests/test_lake/test_decode_paths.py` (run by `make test`
with fewer pages): pages of simulator records, three in four broken in every way it knows
(wrong JSON types, unknown fields, odd dates, repeated keys, ...), each decoded along every
path: one Arrow parse of the body (`read_page`, then `decode`; the happy path of a sync),
Arrow on the body with the dicts, Arrow's conversion of the dicts, and the exact path. They
must give equal batches or raise the same error. Exits non-zero on the first difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cg_assets_tests.test_lake.test_decode_paths import ENDPOINTS, check_pages  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for endpoint in ENDPOINTS:
        try:
            counts = check_pages(endpoint, args.pages, args.seed)
        except AssertionError as difference:
            print(f"{endpoint.name}: DIFFERENCE: {difference}")
            return 1
        print(f"{endpoint.name}: all paths agree: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

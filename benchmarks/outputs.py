"""How every benchmark writes its figures: STEM.csv (one row per measurement) and STEM.json
(the rows plus what they were measured under)."""
from __future__ import annotations

import csv
import json
import os


def write_rows(stem: str, rows: list[dict], **meta) -> None:
    """STEM.csv with `rows` (skipped when there are none; columns = every key any row has, in order of
    appearance, blank where a row lacks one) and STEM.json with `meta` and `rows`."""
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    if rows:
        with open(stem + ".csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))  # rows may differ
            writer.writeheader()
            writer.writerows(rows)
    with open(stem + ".json", "w") as f:
        json.dump(dict(meta, rows=rows), f, indent=2, default=float)

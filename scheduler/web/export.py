"""Downloads of the current view: programmes as CSV (JSON is the API answer itself)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

CSV_COLUMNS = ("id", "source", "key", "title", "status", "posted", "first_seen", "last_seen", "removed_at",
               "removal_reason")


def programmes_csv(rows: Iterable[dict[str, Any]]) -> str:
    """One line per programme; its fields as one JSON column (sources name their fields differently)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*CSV_COLUMNS, "fields"])
    for row in rows:
        writer.writerow([*("" if row.get(c) is None else row[c] for c in CSV_COLUMNS),
                         json.dumps(row.get("fields") or {}, ensure_ascii=False, sort_keys=True)])
    return out.getvalue()

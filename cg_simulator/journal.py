"""Makes a simulator session repeatable across restarts (used by `make run`).

The simulator keeps its data in memory. The demo's Dagster instance and lake persist,
so a restarted simulator must serve the same records under the same cursors: the
journal keeps the generation parameters and every record the live loop added, in order,
and every answer it made, and a restart regenerates the data and replays them in order
(the data set is seeded and a live answer is chosen from its time alone, so both are
deterministic). Records changed through the control API are not journaled.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path

    def load_events(self) -> tuple[dict[str, Any] | None, list[tuple[str, dt.datetime]]]:
        """The generation parameters and the live events in order: ("add" | "answer", time)."""
        if not os.path.exists(self.path):
            return None, []
        with open(self.path, encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle if line.strip()]
        if not lines:
            return None, []
        events = [
            ("answer", dt.datetime.fromisoformat(line["answer_at"]))
            if "answer_at" in line
            else ("add", dt.datetime.fromisoformat(line["live_at"]))
            for line in lines[1:]
        ]
        return lines[0]["generation"], events

    def record_answer(self, at: dt.datetime) -> None:
        self._append({"answer_at": at.isoformat()})

    def begin(self, params: dict[str, Any]) -> None:
        if os.path.exists(self.path):
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._append({"generation": params})

    def record_live(self, at: dt.datetime) -> None:
        self._append({"live_at": at.isoformat()})

    def _append(self, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")

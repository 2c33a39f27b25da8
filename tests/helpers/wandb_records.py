"""Read an offline W&B run file (run-*.wandb): the records wandb wrote, as its own protobufs.

wandb 0.2x+ reads these files in its Go core only, so the framing (LevelDB's log format behind a
7-byte ":W&B" header: 32 KiB blocks of chunks, each with a 7-byte crc/length/type header) is
read here; what each record holds is decoded by wandb's own `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: str | Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, pending, out = 7, b"", []
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # a block's tail too short for a header is padding
            pos += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind in (FULL, FIRST):
            pending = chunk
        elif kind in (MIDDLE, LAST):
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def _key(item) -> str:
    return "/".join(item.nested_key) or item.key


def history(logged: list) -> list[dict]:
    """The rows the run logged (wandb.log), each as {key: JSON text of the value}."""
    rows = [r.history.item for r in logged if r.HasField("history")]
    return [{_key(i): i.value_json for i in items} for items in rows]


def summary(logged: list) -> dict:
    """The run's summary as its updates left it: {key: JSON text of the value}."""
    updates = [r.summary.update for r in logged if r.HasField("summary")]
    return {_key(i): i.value_json for items in updates for i in items}


def config(logged: list) -> dict:
    """The run's config: {key: JSON text of the value}."""
    return {_key(i): i.value_json for r in logged if r.HasField("config") for i in r.config.update}

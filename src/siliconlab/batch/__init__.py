"""Batch jobs: run a task model over a whole file (JSONL, CSV, Parquet), streamed, length-bucketed, resumable.

`local.run_job` is the one-machine engine (atomic chunk commits + a journal, so a rerun resumes);
`ray_engine.run_job` runs the same job with the model on Ray actors (a local Ray or any cluster), committing
through the same journal. Nothing heavy is imported
until a job runs.
"""

from __future__ import annotations

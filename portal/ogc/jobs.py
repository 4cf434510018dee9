"""OGC API - Processes jobs: synchronous calls keep no record, asynchronous ones do.

pygeoapi's managers either record nothing and run everything synchronously (``Dummy``) or
record every execution (``TinyDB``, ``PostgreSQL``, ``MongoDB``): the function APIs answer
thousands of short calls a day (a coordinate conversion, a district lookup), and a record per
call would pile up for no one. :class:`JobManager` runs a call synchronously, without a record,
unless the client asks for ``Prefer: respond-async``; then the call becomes a job: recorded in
a SQLite job store under the data home (shared by every worker process of ``geoportal
serve``), run in a background thread, its status at ``/ogc/jobs/{id}`` and its result, once
done, at ``/ogc/jobs/{id}/results``. Finished jobs and their result files are deleted after
:data:`RETENTION`. A job whose worker process died (a restart) is reported failed rather than
running forever.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pygeoapi.process.base import JobNotFoundError, JobResultNotFoundError
from pygeoapi.process.manager.base import BaseManager, Subscriber
from pygeoapi.process.manager.dummy import DummyManager
from pygeoapi.util import (
    DATETIME_FORMAT,
    JobStatus,
    RequestedProcessExecutionMode,
    RequestedResponse,
    get_current_datetime,
)

from catalog.files import process_alive

#: How long a finished job (and its result file) is kept.
RETENTION = timedelta(hours=24)

#: The job store and result files, relative to the data home.
JOBS_DIR = Path("jobs")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    identifier TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    doc TEXT NOT NULL
)
"""
_HOST = socket.gethostname()
_UNFINISHED = (JobStatus.accepted.value, JobStatus.running.value)


def manager_config(home: Path) -> dict:
    """The ``server.manager`` section of the running pygeoapi config for data home ``home``."""
    root = Path(home) / JOBS_DIR
    return {
        "name": f"{__name__}.JobManager",
        "connection": str(root / "jobs.sqlite"),
        "output_dir": str(root / "output"),
    }


class JobStore:
    """Job records (pygeoapi's job dicts) in one SQLite file, safe across processes.

    Args:
        path: the SQLite file (created with its folder when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def add(self, job: dict) -> None:
        """Record a new job."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO jobs (identifier, created, doc) VALUES (?, ?, ?)",
                (job["identifier"], job["created"], json.dumps(job, ensure_ascii=False)),
            )

    def update(self, job_id: str, changes: dict) -> bool:
        """Merge ``changes`` into a job; False when there is no such job."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT doc FROM jobs WHERE identifier = ?", (job_id,)).fetchone()
            if row is None:
                db.execute("ROLLBACK")
                return False
            job = {**json.loads(row[0]), **changes}
            db.execute(
                "UPDATE jobs SET doc = ? WHERE identifier = ?",
                (json.dumps(job, ensure_ascii=False), job_id),
            )
            db.execute("COMMIT")
            return True

    def get(self, job_id: str) -> dict | None:
        """A job's record, or None."""
        with self._connect() as db:
            row = db.execute("SELECT doc FROM jobs WHERE identifier = ?", (job_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, limit: int | None = None, offset: int = 0) -> tuple[list[dict], int]:
        """Jobs, newest first, and how many there are in all."""
        with self._connect() as db:
            total = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            rows = db.execute(
                "SELECT doc FROM jobs ORDER BY created DESC, identifier LIMIT ? OFFSET ?",
                (-1 if limit is None else limit, offset),
            ).fetchall()
        return [json.loads(r[0]) for r in rows], total

    def delete(self, job_id: str) -> bool:
        """Remove a job's record; False when there was none."""
        with self._connect() as db:
            return db.execute("DELETE FROM jobs WHERE identifier = ?", (job_id,)).rowcount > 0

    def created_before(self, when: str) -> list[dict]:
        """Jobs created before ISO time ``when`` (candidates for deletion)."""
        with self._connect() as db:
            rows = db.execute("SELECT doc FROM jobs WHERE created < ?", (when,)).fetchall()
        return [json.loads(r[0]) for r in rows]


class JobManager(DummyManager):
    """Synchronous calls as pygeoapi's dummy manager; ``respond-async`` calls as recorded jobs.

    Configured by :func:`manager_config` (``connection`` = the job store's file, ``output_dir``
    = where results are written).
    """

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.is_async = True
        self.store = JobStore(Path(manager_def["connection"]))
        self.output_dir = Path(manager_def["output_dir"])
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._async_ids: set[str] = set()
        self._lock = threading.Lock()

    # -- execution -------------------------------------------------------------------------

    def execute_process(
        self,
        process_id: str,
        data_dict: dict,
        execution_mode: RequestedProcessExecutionMode | None = None,
        requested_outputs: dict | None = None,
        subscriber: Subscriber | None = None,
        requested_response: str | None = RequestedResponse.raw.value,
    ) -> tuple[str, str, Any, JobStatus, dict[str, str] | None]:
        """Run a process: as a recorded background job when asked to respond async.

        Returns:
            pygeoapi's (job id, media type, outputs, status, extra headers).
        """
        if execution_mode != RequestedProcessExecutionMode.respond_async:
            return super().execute_process(
                process_id,
                data_dict,
                execution_mode,
                requested_outputs,
                subscriber,
                requested_response,
            )
        self._prune()
        return BaseManager.execute_process(
            self,
            process_id,
            data_dict,
            execution_mode,
            requested_outputs,
            subscriber,
            requested_response,
        )

    # -- records (only asynchronous jobs get here) ------------------------------------------

    def add_job(self, job_metadata: dict) -> str:
        """Record a job, with the process and host running it (to notice a dead worker)."""
        job = {**job_metadata, "pid": os.getpid(), "host": _HOST}
        self.store.add(job)
        return job["identifier"]

    def update_job(self, job_id: str, update_dict: dict) -> bool:
        """Merge changes into a job's record."""
        changes = dict(update_dict)
        if changes.get("location") == "None":  # pygeoapi writes str(None) without output_dir
            changes["location"] = None
        return self.store.update(job_id, changes)

    def get_jobs(
        self, status: JobStatus | None = None, limit: int | None = None, offset: int | None = None
    ) -> dict:
        """Recorded jobs, newest first."""
        jobs, total = self.store.all(limit, offset or 0)
        jobs = [self._checked(j) for j in jobs]
        if status is not None:
            jobs = [j for j in jobs if j["status"] == status.value]
        return {"jobs": jobs, "numberMatched": total}

    def get_job(self, job_id: str) -> dict:
        """One job's record.

        Raises:
            JobNotFoundError: no such job (or it has been deleted after :data:`RETENTION`).
        """
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id}")
        return self._checked(job)

    def get_job_result(self, job_id: str) -> tuple[str | None, Any]:
        """A finished job's media type and output (JSON decoded, bytes otherwise).

        Raises:
            JobNotFoundError: no such job.
            JobResultNotFoundError: the job has no result file.
        """
        job = self.get_job(job_id)
        if job["status"] != JobStatus.successful.value:
            return (None, None)
        location, mimetype = job.get("location"), job.get("mimetype")
        if not location:
            raise JobResultNotFoundError(f"job {job_id} has no result")
        path = Path(location)
        try:
            if mimetype in (None, "application/json", "application/ld+json"):
                return mimetype, json.loads(path.read_text(encoding="utf-8"))
            return mimetype, path.read_bytes()
        except (OSError, json.JSONDecodeError) as err:
            raise JobResultNotFoundError(f"job {job_id}: result unreadable") from err

    def delete_job(self, job_id: str) -> bool:
        """Dismiss a job: its record and its result file."""
        job = self.get_job(job_id)
        self._remove_output(job)
        return self.store.delete(job_id)

    # -- housekeeping ----------------------------------------------------------------------

    def _checked(self, job: dict) -> dict:
        """A job, marked failed when the worker process that ran it is gone."""
        if (
            job["status"] in _UNFINISHED
            and job.get("host") == _HOST
            and isinstance(job.get("pid"), int)
            and not process_alive(job["pid"])
        ):
            changes = {
                "status": JobStatus.failed.value,
                "finished": get_current_datetime(),
                "updated": get_current_datetime(),
                "message": "The server process running this job stopped; run it again.",
            }
            self.store.update(job["identifier"], changes)
            job = {**job, **changes}
        return job

    def _prune(self) -> None:
        """Delete jobs (and result files) created more than :data:`RETENTION` ago."""
        cutoff = (datetime.now(UTC) - RETENTION).strftime(DATETIME_FORMAT)
        for job in self.store.created_before(cutoff):
            job = self._checked(job)
            if job["status"] in _UNFINISHED:
                continue  # still running (here or on another server)
            self._remove_output(job)
            self.store.delete(job["identifier"])

    def _remove_output(self, job: dict) -> None:
        location = job.get("location")
        if location:
            path = Path(location)
            if path.parent == self.output_dir:
                with suppress(FileNotFoundError):
                    path.unlink()

    def __repr__(self) -> str:
        return f"<JobManager> {self.store.path}"

"""A learner's progress in SQLite: quiz attempts, topics marked done, per-topic scores.

Why SQLite (stdlib `sqlite3`): several UI sessions and a terminal may write at once. WAL mode
lets readers and one writer work together, `busy_timeout` makes a second writer wait instead of
failing, and each write is one short transaction. The schema is versioned (`PRAGMA
user_version`) and migrated forward in order, inside a transaction, so an older file is
upgraded in place. A file that is not a readable database, or one written by a newer tutor, is
a `ProgressError` naming the file and what to do — it is never replaced or "repaired".
"""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import ProgressError

DB_NAME = "progress.db"
BUSY_MS = 10_000

# migrations[i] takes the schema from version i to i + 1; append, never edit
MIGRATIONS: list[str] = [
    # 1: quiz attempts
    """
    CREATE TABLE attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        question_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        question TEXT NOT NULL,
        answer_key TEXT NOT NULL,
        source TEXT NOT NULL,
        answer TEXT NOT NULL,
        verdict TEXT NOT NULL,
        score REAL NOT NULL
    );
    """,
    # 2: topics (per-topic score, the path's done marks) and who decided a verdict
    """
    ALTER TABLE attempts ADD COLUMN topic TEXT NOT NULL DEFAULT '';
    ALTER TABLE attempts ADD COLUMN decided_by TEXT NOT NULL DEFAULT 'match';
    CREATE INDEX attempts_topic ON attempts(topic);
    CREATE TABLE topics_done (
        topic TEXT PRIMARY KEY,
        at REAL NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class Attempt:
    question_id: str
    kind: str
    question: str
    answer_key: str
    source: str  # "file › section (p. N)"
    answer: str
    verdict: str
    score: float
    topic: str = ""
    decided_by: str = "match"
    at: float = 0.0


@dataclass(frozen=True)
class TopicScore:
    topic: str
    attempts: int
    correct: int
    score: float  # mean score of the attempts
    done: bool
    last: float  # time of the last attempt or done mark


class Progress:
    """One learner's progress file. Cheap to create; each call opens its own connection, so one
    instance may be shared by threads (the UI) and several processes may use the same file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._ready = False

    @classmethod
    def of(cls, settings) -> "Progress":
        return cls(Path(settings.paths.data_dir) / DB_NAME)

    def _damaged(self, e: Exception) -> ProgressError:
        return ProgressError(f"progress database {self.path} is unreadable ({e}); it was left as it is — "
                             f"move it aside (your progress starts afresh) or restore a backup")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        except sqlite3.Error as e:
            raise self._damaged(e) from None
        try:
            con.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            if not self._ready:
                self._prepare(con)
            yield con
        except sqlite3.DatabaseError as e:
            if (getattr(e, "sqlite_errorcode", 0) & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise ProgressError(f"progress database {self.path} stayed locked by another writer "
                                    f"for {BUSY_MS / 1000:.0f}s; try again") from None
            raise self._damaged(e) from None
        finally:
            con.close()

    def _prepare(self, con: sqlite3.Connection) -> None:
        """Check the file, switch to WAL, migrate to the current schema."""
        ok = con.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise self._damaged(sqlite3.DatabaseError(f"integrity check: {ok[0] if ok else 'no answer'}"))
        con.execute("PRAGMA journal_mode = WAL")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ProgressError(f"progress database {self.path} has schema version {version}, newer than this "
                                f"tutor knows ({SCHEMA_VERSION}); upgrade the tutor or use another TUTOR_DATA")
        if version < SCHEMA_VERSION:
            con.execute("BEGIN IMMEDIATE")  # one migrator at a time; others wait, then see it done
            try:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                for v in range(version, SCHEMA_VERSION):
                    for stmt in (s.strip() for s in MIGRATIONS[v].split(";")):
                        if stmt:
                            con.execute(stmt)
                    con.execute(f"PRAGMA user_version = {v + 1}")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        self._ready = True

    # ---- writes ---------------------------------------------------------------------------------
    def record(self, a: Attempt) -> int:
        """Store one attempt; returns its id."""
        with self._connect() as con:
            cur = con.execute(
                "INSERT INTO attempts (at, question_id, kind, question, answer_key, source, answer, verdict, score, "
                "topic, decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (a.at or time.time(), a.question_id, a.kind, a.question, a.answer_key, a.source, a.answer,
                 a.verdict, float(a.score), a.topic, a.decided_by))
            return int(cur.lastrowid)

    def mark_done(self, topic: str, done: bool = True) -> None:
        with self._connect() as con:
            if done:
                con.execute("INSERT INTO topics_done (topic, at) VALUES (?, ?) "
                            "ON CONFLICT(topic) DO UPDATE SET at = excluded.at", (topic, time.time()))
            else:
                con.execute("DELETE FROM topics_done WHERE topic = ?", (topic,))

    # ---- reads ----------------------------------------------------------------------------------
    def done(self) -> set[str]:
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT topic FROM topics_done")}

    def attempts(self, topic: str | None = None, limit: int | None = None) -> list[Attempt]:
        q = ("SELECT question_id, kind, question, answer_key, source, answer, verdict, score, topic, decided_by, at "
             "FROM attempts")
        args: tuple = ()
        if topic is not None:
            q += " WHERE topic = ?"
            args = (topic,)
        q += " ORDER BY at DESC, id DESC"
        if limit:
            q += f" LIMIT {int(limit)}"
        with self._connect() as con:
            return [Attempt(*row) for row in con.execute(q, args)]

    def topics(self) -> list[TopicScore]:
        """Per topic: attempts, correct answers, mean score, done mark; most recent first."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT topic, COUNT(*), SUM(verdict = 'correct'), AVG(score), MAX(at) FROM attempts GROUP BY topic"
            ).fetchall()
            done = dict(con.execute("SELECT topic, at FROM topics_done").fetchall())
        out = {t: TopicScore(t, n, int(c or 0), round(float(s or 0), 3), t in done, max(last, done.get(t, 0)))
               for t, n, c, s, last in rows}
        for t, at in done.items():
            out.setdefault(t, TopicScore(t, 0, 0, 0.0, True, at))
        return sorted(out.values(), key=lambda s: -s.last)

    def schema_version(self) -> int:
        with self._connect() as con:
            return int(con.execute("PRAGMA user_version").fetchone()[0])

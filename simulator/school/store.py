"""The school's database: the roster, kept where only the school can read it (0600)."""

from __future__ import annotations

from pathlib import Path

from firmware.errors import VendingError
from simulator.backends.party_file import open_owned
from simulator.school.roster import Student

SCHEMA = """
CREATE TABLE IF NOT EXISTS students (
    student TEXT PRIMARY KEY, card_uid TEXT NOT NULL UNIQUE, profile TEXT NOT NULL, machine TEXT NOT NULL,
    linked INTEGER NOT NULL, daily_limit INTEGER
);
"""


class UnknownStudent(VendingError):
    pass


class SchoolStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 0600, the roster: who holds which card; the school backend stores guardian alerts in this file too
        self.conn = open_owned(path, "school", SCHEMA, isolation_level=None)

    def replace_roster(self, students: list[Student]) -> None:
        """The roster as imported, all or nothing (a student who left is gone from the school's side too)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("DELETE FROM students")
            self.conn.executemany(
                "INSERT INTO students VALUES (?, ?, ?, ?, ?, ?)",
                [(s.student, s.card_uid, s.profile, s.machine, int(s.linked), s.daily_limit) for s in students],
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def student(self, student: str) -> Student:
        row = self.conn.execute("SELECT * FROM students WHERE student = ?", (student,)).fetchone()
        if row is None:
            raise UnknownStudent(f"--student: {student!r} is not on the school's roster")
        return Student(row[0], row[1], row[2], row[3], bool(row[4]), row[5])

    def on_roster(self, student: str) -> bool:
        return self.conn.execute("SELECT 1 FROM students WHERE student = ?", (student,)).fetchone() is not None

    def machines(self) -> list[str]:
        """The machines the roster names: with ``--machine``, the school's machines every request reads."""
        return [str(m) for (m,) in self.conn.execute("SELECT DISTINCT machine FROM students WHERE machine != ''")]

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM students").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

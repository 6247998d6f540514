"""A throw-away PostgreSQL server for tests: Debian's binaries, a temp data directory, a free port.

PostgreSQL refuses to run as root (CI and this machine run as root), so ``initdb`` and ``pg_ctl`` run as the
``postgres`` user (``runuser -u postgres --``) when the tests run as root, with a data directory that user owns.
The server listens on 127.0.0.1 only, trusts local connections (``-A trust``: a test cluster, never a real one)
and is stopped and removed by :meth:`PgServer.stop`.

:func:`find_pg_bin` answers where the binaries are (``TWIN_PG_BIN`` or ``/usr/lib/postgresql/<n>/bin``);
``None`` when PostgreSQL is not installed (tests then skip locally and fail under ``CI``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

SUPERUSER = "postgres"


def find_pg_bin() -> Path | None:
    """Directory of ``initdb``/``pg_ctl`` (newest Debian PostgreSQL), or None."""
    env = os.environ.get("TWIN_PG_BIN")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                          key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                                          else 0, reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One running test cluster; :meth:`new_database` gives each test its own empty database."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.tmp = Path(tempfile.mkdtemp(prefix="twin-pg-"))
        self.data = self.tmp / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.postgis = False
        self._template = "twin_template"

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> PgServer:
        if self.as_root:
            shutil.chown(self.tmp, SUPERUSER)
        os.chmod(self.tmp, 0o700)
        out = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                        "--no-locale", "--no-sync")
        if out.returncode:
            raise RuntimeError(f"initdb failed: {out.stderr or out.stdout}")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.tmp} -c fsync=on"
        out = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.tmp / "log"), "-o", opts, "-w", "-t", "60",
                        "start")
        if out.returncode:
            log = (self.tmp / "log").read_text(errors="replace") if (self.tmp / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {out.stderr or out.stdout}\n{log}")
        self._make_template()
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _make_template(self) -> None:
        """A template database with PostGIS created in it when available (creating it per test costs ~1 s)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self._template}")
            have = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
        if have:
            with psycopg.connect(self.url(self._template), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION postgis")
            self.postgis = True

    def new_database(self, *, postgis: bool = True) -> str:
        """Create an empty database (from the PostGIS template unless ``postgis=False``); its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        template = self._template if postgis else "template0"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.tmp, ignore_errors=True)

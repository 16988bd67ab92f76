"""Debian's nginx run by a test: foreground, unprivileged paths, everything in one temp dir."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from tuspluggy.testing import stop_process, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    """Debian's nginx in the foreground, everything (pid, logs, temp files) in `directory`."""

    def __init__(self, directory: Path, site: str) -> None:
        self.directory = directory
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / name).mkdir(exist_ok=True)
        (directory / "site.conf").write_text(site)
        user = "user root;" if os.geteuid() == 0 else ""  # workers must read our temp dir
        (directory / "nginx.conf").write_text(f"""
{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {directory}/site.conf;
}}
""")
        self.process: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        return [NGINX, "-p", f"{self.directory}/", "-c", str(self.directory / "nginx.conf"),
                "-e", str(self.directory / "error.log"), *extra]

    def start(self, port: int) -> Nginx:
        checked = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(self.command("-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

        def listening():
            assert self.process.poll() is None, self.log()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=30)
        return self

    def log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process, 20)

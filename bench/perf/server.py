"""nginx (Debian's) serving the mirror on 127.0.0.1: a non-daemon child with its own config."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

logger = logging.getLogger(__name__)

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/bin/nginx")
_CONFIG = """\
worker_processes 1;
daemon off;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=50000 inactive=60s;
    types {{ text/html html; application/xml xml; text/plain txt; }}
    default_type application/octet-stream;
    charset_types text/html;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        etag on;
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def nginx_binary() -> str:
    """nginx's path, installed with apt-get (Debian's package) when missing."""
    for path in NGINX_CANDIDATES:
        if Path(path).exists():
            return path
    if found := shutil.which("nginx"):
        return found
    print("nginx not found: installing Debian's package (apt-get install nginx-light)")
    apt = ["apt-get", "install", "-y", "--no-install-recommends"]
    subprocess.run(["apt-get", "update", "-q"], check=False)
    if subprocess.run([*apt, "nginx-light"], check=False).returncode != 0:
        subprocess.run([*apt, "nginx"], check=True)
    for path in NGINX_CANDIDATES:
        if Path(path).exists():
            return path
    raise RuntimeError("nginx could not be installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """``with Nginx(root) as server: server.base_url`` — stopped (and its temp dir removed)
    on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="perf-nginx-")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        tmp = Path(self._tmp.name)
        conf = tmp / "nginx.conf"
        conf.write_text(_CONFIG.format(tmp=tmp, port=self.port, root=self.root))
        binary = nginx_binary()
        self.proc = subprocess.Popen(
            [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"nginx exited: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError("nginx did not start listening")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._tmp.cleanup()

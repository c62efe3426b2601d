"""A loopback HTTP file server with single byte-range support, for /vsicurl/ tests.

Usage: ``python tests/range_server.py FOLDER [LOG]``; prints its port, serves until
killed. With LOG, appends ``<User-Agent>\t<bytes sent>`` for every request, so a
test can tell which process read what (give each process its own
``GDAL_HTTP_USERAGENT``).
"""

from __future__ import annotations

import functools
import http.server
import io
import sys
from pathlib import Path
from typing import Any


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus ``Range: bytes=a-b``."""

    def log_message(self, *args: Any) -> None:
        pass

    log: Path | None = None

    def _record(self, nbytes: int) -> None:
        if self.log is not None:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{self.headers.get('User-Agent', '')}\t{nbytes}\n")

    def send_head(self) -> Any:
        rng = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not rng or not path.is_file():
            whole = path.is_file() and self.command == "GET"
            self._record(path.stat().st_size if whole else 0)
            return super().send_head()
        size = path.stat().st_size
        first, last = rng.removeprefix("bytes=").split(",")[0].split("-")
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._record(len(data))
        return io.BytesIO(data)


def main() -> None:
    if len(sys.argv) > 2:
        RangeHandler.log = Path(sys.argv[2])
    handler = functools.partial(RangeHandler, directory=sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

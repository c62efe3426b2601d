"""``geoseg.errors.silenced``: silencing a warning on many threads at once holds."""

from __future__ import annotations

import threading
import time
import warnings

import pytest

from geoseg.errors import silenced


class _Noise(UserWarning):
    pass


def _warn_in_threads(quiet: object, rounds: int = 200, threads: int = 8) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(rounds):
            try:
                with quiet():  # type: ignore[operator]
                    time.sleep(0.0002)  # let the other threads in, as GDAL I/O does
                    warnings.warn("noise", _Noise, stacklevel=1)
            except _Noise as err:
                errors.append(err)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_silenced_holds_on_threads_and_restores_the_callers_filters() -> None:
    # with a bare warnings.catch_warnings() in place of silenced() a warning gets
    # through in every run (threads restore each other's filters)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _warn_in_threads(lambda: silenced(_Noise)) == []
        with pytest.raises(_Noise):  # the caller's "error" filter is back
            warnings.warn("after", _Noise, stacklevel=1)

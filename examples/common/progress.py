"""A plain-text progress bar with the calling convention of tqdm's (which is no dependency here).

    for step in bar(range(steps), desc="SGD seed 0 epoch 1"):
        ...

On a terminal the bar redraws itself in place on stderr; when stderr is a file or a
pipe (a log, a CI job) it stays silent, so that logs hold results rather than redraws.
"""

import sys
import time
from typing import Iterable, Iterator, Optional, TextIO, TypeVar

T = TypeVar("T")
WIDTH = 30  # characters of the bar itself
REDRAW_SECONDS = 0.2  # at most five redraws a second: a step can take microseconds


def bar(
    iterable: Iterable[T],
    desc: str = "",
    total: Optional[int] = None,
    leave: bool = False,
    stream: Optional[TextIO] = None,
) -> Iterator[T]:
    """Yields ``iterable``'s items, drawing ``desc [#####.....] 50% 12/24 3 s`` as they go.

    ``total`` defaults to ``len(iterable)``; ``leave`` keeps the finished bar on screen
    (otherwise its line is cleared for what is printed next).
    """
    stream = stream if stream is not None else sys.stderr
    if not stream.isatty():
        yield from iterable
        return
    total = total if total is not None else len(iterable)  # type: ignore[arg-type]
    started = last = time.perf_counter()
    done = 0

    def draw() -> None:
        filled = WIDTH * done // max(total, 1)
        stream.write(
            f"\r{desc} [{'#' * filled}{'.' * (WIDTH - filled)}] {100 * done // max(total, 1):3d}% "
            f"{done}/{total} {time.perf_counter() - started:.0f} s"
        )
        stream.flush()

    draw()
    for item in iterable:
        yield item
        done += 1
        if time.perf_counter() - last >= REDRAW_SECONDS or done == total:
            last = time.perf_counter()
            draw()
    stream.write("\n" if leave else "\r\033[K")
    stream.flush()


def quiet(iterable: Iterable[T], **_) -> Iterable[T]:
    """No bar: the same signature as :func:`bar`, for runs nobody watches (tuning trials, tests)."""
    return iterable

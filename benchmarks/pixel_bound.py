"""A lower bound for scattered-pixel masks: ``python -m benchmarks.pixel_bound``.

Not part of ``make bench``. It times a kernel written for one case only (3x3 box, float32, in place,
no nodata, no boundary modes, no segments, no ring): per row, the targets are gathered from the
mask, their source pixels loaded together (many cache misses in flight), the results computed and
written back one row later. No general kernel can beat it much on the same data, so it bounds what
``masked_convolve`` can reach against OpenCV on the benchmark's pixel masks (see RESULTS.md).
It is not exact against the reference at the image edges (it clamps) and is not used by geomask.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np


@numba.njit(nogil=True, boundscheck=False)
def _box3_in_place(a, words, compute):  # pragma: no cover - compiled
    h, w = a.shape
    third = 1.0 / 3.0
    pend_x = np.empty((2, w), np.int64)
    pend_v = np.empty((2, w), a.dtype)
    pend_n = np.zeros(2, np.int64)
    xs = np.empty(w, np.int64)
    acc = 0.0
    for i in range(h):
        s = i & 1
        if i >= 2:  # row i - 2 is read by no later row: write its results
            for m in range(pend_n[s]):
                a[i - 2, pend_x[s, m]] = pend_v[s, m]
        pend_n[s] = 0
        n = 0
        for wd in range(words.shape[1]):
            v = words[i, wd]
            while v:
                byte = 0
                rest = v
                while (rest & np.uint64(0xFF)) == 0:
                    rest >>= np.uint64(8)
                    byte += 1
                xs[n] = wd * 8 + byte
                n += 1
                v &= ~(np.uint64(0xFF) << np.uint64(8 * byte))
        if n == 0:
            continue
        r0, r2 = max(i - 1, 0), min(i + 1, h - 1)
        for m in range(n):  # independent loads first
            x = xs[m]
            acc += a[r0, x] + a[i, x] + a[r2, x]
        for m in range(n):
            x = xs[m]
            t = np.float64(a[i, x])
            if compute:
                x0, x2 = max(x - 1, 0), min(x + 1, w - 1)
                t = 0.0
                for r in (r0, i, r2):
                    t += (np.float64(a[r, x0]) + np.float64(a[r, x2]) + np.float64(a[r, x])) * third
                t *= third
            pend_x[s, m] = x
            pend_v[s, m] = t
        pend_n[s] = n
    return acc


def _timed(image: np.ndarray, words: np.ndarray, compute: bool, pool: ThreadPoolExecutor | None) -> float:
    """Seconds for one call on a fresh copy; with ``pool``, the two halves of the rows on two
    threads (the loop releases the GIL; the rows at the cut are treated as image edges)."""
    a = image.copy()
    half = a.shape[0] // 2
    start = time.perf_counter()
    if pool is None:
        _box3_in_place(a, words, compute)
    else:
        parts = [(a[:half], words[:half]), (a[half:], words[half:])]
        list(pool.map(lambda p: _box3_in_place(p[0], p[1], compute), parts))
    return time.perf_counter() - start


def main() -> None:
    size = 4096
    rng = np.random.default_rng(0)
    image = rng.random((size, size), dtype=np.float32)
    print(f"{size}x{size} float32, scattered pixels, best of 7 (ms): 1 thread / 2 threads")
    with ThreadPoolExecutor(2) as pool:
        for cover in (0.001, 0.01):
            mask = rng.random((size, size)) < cover
            words = mask.view(np.uint64)
            for compute, label in ((False, "visit the targets"), (True, "3x3 box at the targets")):
                _timed(image, words, compute, None)  # compile
                one = min(_timed(image, words, compute, None) for _ in range(7))
                two = min(_timed(image, words, compute, pool) for _ in range(7))
                print(f"  cover {cover:.1%}: {label}: {one * 1e3:.2f} / {two * 1e3:.2f}")


if __name__ == "__main__":
    main()

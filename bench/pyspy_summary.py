"""Summarise a py-spy ``--format raw`` (folded stacks) profile: own time and inclusive time
per function, as a share of all samples.

    .venv/bin/py-spy record --format raw -o bench/out/import.pyspy.txt -- \
        .venv/bin/python bench/import_speed.py --repeat 1
    .venv/bin/python bench/pyspy_summary.py bench/out/import.pyspy.txt [--top 25] [--under FUNC]

``--under FUNC`` keeps only the samples whose stack passes through a frame whose text contains
FUNC (for example ``import_source``), so that set-up and the baselines do not dilute the shares.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--under", default=None)
    args = ap.parse_args()
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in args.path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if args.under and not any(args.under in f for f in frames):
            continue
        n = int(count)
        total += n
        names = [_name(f) for f in frames]
        own[names[-1]] += n
        for name in set(names):
            incl[name] += n
    print(f"{total} samples" + (f" under {args.under!r}" if args.under else ""))
    for title, counter in (("own", own), ("inclusive", incl)):
        print(f"\n--- top {args.top} by {title} time ---")
        for name, n in counter.most_common(args.top):
            print(f"{100 * n / total:6.1f} %  {name}")


if __name__ == "__main__":
    main()

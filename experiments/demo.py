"""`make demo`: runs the pipeline that exists so far on the embedded defaults and says what it did."""
from __future__ import annotations

import subprocess
import sys


def main() -> None:
    steps = [
        ["hwnas", "spaces"],
        ["hwnas", "sample", "--space", "mbv3-tiny", "--n", "2", "--seed", "0"],
        ["hwnas", "profile", "--space", "mbv3", "--json", "--ofa",
         '{"ks": [7]*20, "e": [6]*20, "d": [4]*5, "r": 224}'.replace("[7]*20", str([7] * 20))
         .replace("[6]*20", str([6] * 20)).replace("[4]*5", str([4] * 5))],
    ]
    for cmd in steps:
        print("$", " ".join(cmd[:6]), "...", flush=True)
        subprocess.run([sys.executable, "-m", "nas.cli.main", *cmd[1:]], check=True)


if __name__ == "__main__":
    main()

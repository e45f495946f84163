import shutil
import subprocess
from collections import Counter

from tabulate import tabulate

AWARDS = [("NASA", 1), ("DOE", 2), ("NASA", 3), ("NIH", 4)]


def counts(rows):
    return Counter(agency for agency, _ in rows)


def render(rows) -> str:
    return tabulate(sorted(counts(rows).items()), headers=["agency", "awards"])


def r_summary(rows) -> str:
    """Same count done by R, when the image has it (WITH_R=true)."""
    if not shutil.which("Rscript"):
        return "R not installed"
    values = ",".join(f"'{a}'" for a, _ in rows)
    code = (
        f"x <- c({values}); "
        "if (requireNamespace('strataR', quietly = TRUE)) print(strataR::summarise_counts(x)) else print(table(x))"
    )
    return subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, check=True).stdout

"""Does q2-mgm's meta-analysis (q2_mgm.core.meta_analysis) find what the field's published cross-study
meta-analyses found? For each leave-one-study-out cohort of ../shared/data/disease-benchmark (3 or more studies:
benchmarks/transfer.py's `cohorts`), the genera that benchmarks/published_markers.tsv lists for it (a published
meta-analysis names them with a direction, and the cohort's table holds them): does the combined Hedges' g point the
same way, and is the genus among the TOP genera by combined effect in that direction?

benchmarks/published_markers.tsv: cohort, genus (the cohort's g__ token), points_to (Case or Control: where the
paper found the genus higher), source. Its sources: Wirbel et al. 2019 and Thomas et al. 2019 (CRC, species-level
markers named by their genus), Duvallet et al. 2017 (genera significant in the same direction in at least two
datasets of a disease: CRC, and IBD with CD and UC cases pooled, applied to the CD and UC cohorts) and Romano et al.
2021 (Parkinson's disease, the genera its abstract names). Cohorts without such a paper (Alzheimer's, autism, IBS,
NAFLD, RA, adenoma) have no rows. The papers' studies overlap the cohorts' (CRC_Metagenomics' seven are among
Wirbel's and Thomas'), so agreement is a check of the method, not an independent replication.

usage: _published_markers.py [--data DIR] [--top N]   (prints a markdown table; `agreement` is the function)
"""
import argparse

import pandas as pd

from _harness import BENCH, SHARED
from transfer import cohorts, read_cohort

MARKERS = BENCH / "published_markers.tsv"
TOP = 10


def read_markers(path=MARKERS) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")


def agreement(genera: pd.DataFrame, markers: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """One row per published genus of a cohort: its published and found direction, combined g, q-value, its rank
    by |g| among the genera pointing the same way (1 = the largest effect; NaN where it points the other way or was
    not compared) and whether that rank is within `top`.

    genera: genus_meta_analysis(...).genera of the cohort; markers: its rows of published_markers.tsv."""
    rows = []
    for marker in markers.itertuples():
        found = genera.loc[marker.genus] if marker.genus in genera.index else None
        same_way = found is not None and found.points_to == marker.points_to
        ranked = genera[genera.points_to == marker.points_to].hedges_g.abs().rank(ascending=False, method="min")
        rank = ranked[marker.genus] if same_way else float("nan")
        rows.append({"genus": marker.genus, "published": marker.points_to,
                     "found": None if found is None else found.points_to,
                     "hedges_g": float("nan") if found is None else found.hedges_g,
                     "q_value": float("nan") if found is None else found.q_value,
                     "rank": rank, f"top_{top}": bool(rank <= top)})
    return pd.DataFrame(rows, columns=["genus", "published", "found", "hedges_g", "q_value", "rank", f"top_{top}"])


def _place(row):
    if row.found is None or pd.isna(row.hedges_g):
        return "not compared"
    return f"rank {int(row['rank'])}" if row.found == row.published else f"points to {row.found}"


def main():
    from q2_mgm.core.meta_analysis import genus_meta_analysis
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=__import__("pathlib").Path, default=SHARED / "data" / "disease-benchmark")
    p.add_argument("--top", type=int, default=TOP)
    args = p.parse_args()
    markers = read_markers()
    print(f"| cohort | studies | genera compared | published (held) | same direction | in top {args.top} of "
          "their direction | q < 0.05, same direction | genera (rank by abs(g) among the genera pointing the "
          "published way) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, folder in cohorts(args.data).items():
        table, labels, studies = read_cohort(folder)
        result = genus_meta_analysis(table, labels, studies)
        rows = agreement(result.genera, markers[markers.cohort == name], args.top)
        same = rows.found == rows.published
        listed = ", ".join(f"{r.genus[3:]} ({_place(r)})" for _, r in rows.iterrows()) or "none listed"
        print(f"| {name} | {studies.nunique()} | {result.record['genera_compared']} | {len(rows)} | {same.sum()} | "
              f"{rows[f'top_{args.top}'].sum()} | {(same & (rows.q_value < 0.05)).sum()} | {listed} |")


if __name__ == "__main__":
    main()

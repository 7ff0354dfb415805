"""Fetch the lean/obese twins data (Turnbaugh et al. 2009) from Debian's r-bioc-dirichletmultinomial package and
write a BIOM table of counts, a taxonomy TSV and sample metadata, ready for `qiime tools import`.

usage: fetch_twins.py OUT_DIR
"""
import pathlib
import subprocess
import sys
import tempfile

import biom
import pandas as pd

PACKAGE = "r-bioc-dirichletmultinomial"
EXTDATA = "usr/lib/R/site-library/DirichletMultinomial/extdata"
BMI = {0: "Lean", 1: "Obese", 2: "Overwt"}


def extract(workdir):
    subprocess.run(["apt-get", "download", PACKAGE], cwd=workdir, check=True, capture_output=True)
    deb = next(pathlib.Path(workdir).glob(f"{PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(pathlib.Path(workdir) / "x")], check=True)
    return pathlib.Path(workdir) / "x" / EXTDATA


def convert(extdata, out):
    counts = pd.read_csv(extdata / "Twins.csv", index_col=0)  # genera x samples
    labels = pd.read_csv(extdata / "TwinStudy.t", header=None).iloc[:, 0].map(BMI)
    taxonomy = pd.Series({name: "Unassigned" if name == "Uknown" else f"g__{name}" for name in counts.index},
                         name="Taxon").rename_axis("Feature ID")
    table = biom.Table(counts.to_numpy(dtype=float), counts.index.tolist(), counts.columns.tolist())
    with biom.util.biom_open(str(out / "table.biom"), "w") as fh:
        table.to_hdf5(fh, "q2-mgm demo: Turnbaugh et al. 2009 twins (DirichletMultinomial)")
    taxonomy.to_csv(out / "taxonomy.tsv", sep="\t")
    metadata = pd.DataFrame({
        "bmi_category": labels.to_numpy(),
        "subject": [s.split(".")[0] for s in counts.columns],
        "timepoint": ["2" if s.endswith(".2") else "1" for s in counts.columns],
    }, index=pd.Index(counts.columns, name="sample-id"))
    metadata.to_csv(out / "metadata.tsv", sep="\t")


def main(out):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        convert(extract(workdir), out)
    print(f"[demo] twins data (Turnbaugh et al. 2009) written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])

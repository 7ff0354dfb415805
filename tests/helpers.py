"""Helpers shared by the tests: ../shared paths, an independent reference tokenizer, model-tampering tools."""
import functools
import hashlib
import io
import json
import pathlib
import pickle
import re
import shutil
import sys
import uuid
import zipfile

import pandas as pd
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# the q2cli wrapper of the venv running the tests (.venv/bin/qiime, or .venv-qiime2-2024.10/bin/qiime in that lane)
QIIME = pathlib.Path(sys.executable).with_name("qiime")
PARITY_CASES = ("t3_random_counts", "t4_ecam_real_L7")


def shared_path(*parts):
    """A path under ../shared, or a skip that says why."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared is absent: this test reads {path} (../shared holds the real data sets and "
                    "upstream MGM's parity fixtures)")
    return path


def read_genus_table(dataset, name="genus_counts.tsv"):
    """A samples x genus-columns table from ../shared/data/<dataset>/."""
    return pd.read_csv(shared_path("data", dataset, name), sep="\t", index_col=0, dtype={"sample_id": str})


def read_metadata(dataset):
    """../shared/data/<dataset>/metadata.tsv, indexed by `sample-id` (QIIME 2's ID header), subject IDs as text."""
    frame = pd.read_csv(shared_path("data", dataset, "metadata.tsv"), sep="\t", index_col=0,
                        dtype={"sample_id": str, "subject": str, "studyid": str})
    return frame.rename_axis("sample-id")


def frequency_table(counts):
    """A FeatureTable[Frequency] artifact of a samples x features DataFrame."""
    import qiime2
    return qiime2.Artifact.import_data("FeatureTable[Frequency]", counts.astype(float))


def corpus_of(genera, sample_ids, seed):
    """A SampleData[MGMCorpus] artifact of random counts (1 to 49) of `genera` in each sample: for the tiny model."""
    import numpy as np
    import qiime2
    from q2_mgm.core.tokenizer import tokenize_dataframe
    counts = np.random.default_rng(seed).integers(1, 50, size=(len(sample_ids), len(genera))).astype(float)
    return qiime2.Artifact.import_data("SampleData[MGMCorpus]", tokenize_dataframe(
        pd.DataFrame(counts, index=list(sample_ids), columns=genera)))


def subset_corpus(corpus_artifact, sample_ids):
    """A SampleData[MGMCorpus] artifact holding only sample_ids of corpus_artifact (their order kept)."""
    import qiime2
    from q2_mgm.core.tokenizer import Corpus
    return qiime2.Artifact.import_data("SampleData[MGMCorpus]", corpus_artifact.view(Corpus).subset(sample_ids))


@functools.lru_cache(maxsize=None)
def parity_case(name):
    """Upstream MGM 0.5.8's inputs and outputs for one parity case (see ../shared/parity/README.md)."""
    base = shared_path("parity")

    def reference(suffix, **kwargs):
        return pd.read_csv(base / f"{name}.{suffix}", index_col=0, dtype={"sample_id": str}, **kwargs)

    # upstream's orientation is rows = taxonomy strings, columns = samples
    table = pd.read_csv(base / f"{name}.input.csv", index_col=0).T
    return {
        "table": table,
        "sentences": reference("sentences.tsv", sep="\t", keep_default_na=False),
        "tokens": reference("tokens.csv"),
        "h_mean": reference("h_mean.csv"),
        "h_last": reference("h_last.csv"),
    }


# --- an oracle: upstream's rules written out one sample at a time, independent of q2_mgm's vectorised code ---

GENUS = re.compile(r"g__[A-Za-z0-9_]+")


def reference_sentences(table, taxonomy=None, max_length=512):
    """{sample: (sentence, length before truncation)} for samples with abundance in the vocabulary.

    Exact (bit for bit) where the table holds integer-valued counts, since their sums do not depend on order."""
    from q2_mgm.core.vocab import genus_statistics
    stats = genus_statistics()
    position = {genus: i for i, genus in enumerate(stats.index)}
    mean, std = stats["mean"].to_dict(), stats["std"].to_dict()
    taxa = [str(c) if taxonomy is None else str(taxonomy[c]) for c in table.columns]
    genera = [match.group(0) if (match := GENUS.search(t)) else None for t in taxa]
    sentences = {}
    for sample, row in zip(table.index, table.to_numpy(dtype=float)):
        sums = {}
        for genus, value in zip(genera, row):
            if genus in position and value != 0:
                sums[genus] = sums.get(genus, 0.0) + float(value)
        total = sum(sums.values())
        if total == 0:
            continue
        ranked = []
        for genus, value in sums.items():
            z = (value / total - mean[genus]) / std[genus]
            if z > (0.0 - mean[genus]) / std[genus]:
                ranked.append((-z, position[genus], genus))
        tokens = ["<bos>", *(genus for _, _, genus in sorted(ranked)), "<eos>"]
        sentences[sample] = (" ".join(tokens[:max_length]), len(tokens))
    return sentences


# --- planted pickles: unpickling one creates a marker file ---

class PlantedPayload:
    """A pickle whose loading runs code: open(marker, 'w'). If the marker appears, something unpickled it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def plain_pickle_bytes(marker):
    return pickle.dumps(PlantedPayload(marker))


def torch_pickle_bytes(marker):
    import torch
    buffer = io.BytesIO()
    torch.save({"transformer.wte.weight": PlantedPayload(marker)}, buffer)
    return buffer.getvalue()


def unpickle_as_an_unsafe_loader_would(payload):
    """The control: what a pickle-based loader would do with the planted bytes."""
    if payload[:2] == b"PK":  # torch.save's zip container
        import torch
        return torch.load(io.BytesIO(payload), weights_only=False)
    return pickle.loads(payload)


# --- model directory tampering: (change, words the core error names, words the QIIME 2 validation error names) ---

def edit_json(name, change):
    """A tampering that rewrites the JSON file `name` of a directory with change(record) applied in place."""
    def edit(directory):
        path = directory / name
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    return edit


def _edit_json(name, **changes):
    return edit_json(name, lambda record: record.update(changes))


def _append_token(directory):
    with open(directory / "vocab.txt", "a") as fh:
        fh.write("g__Notagenus\n")


def _duplicate_token(directory):
    lines = (directory / "vocab.txt").read_text().splitlines()
    lines[10] = lines[11]  # same length, one genus twice
    (directory / "vocab.txt").write_text("\n".join(lines) + "\n")


def _truncate_weights(directory):
    path = directory / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _reshape_weight(directory):
    import safetensors.torch
    path = directory / "model.safetensors"
    state = safetensors.torch.load_file(str(path))
    state["transformer.wpe.weight"] = state["transformer.wpe.weight"][:256].clone()
    safetensors.torch.save_file(state, str(path), metadata={"format": "pt"})


def _write(name, text):
    def write(directory):
        (directory / name).write_text(text)
    return write


def _remove(name):
    def remove(directory):
        (directory / name).unlink()
    return remove


TAMPERINGS = {
    "config.json missing": (_remove("config.json"), ["missing", "config.json"], ["config.json"]),
    "model.safetensors missing": (_remove("model.safetensors"), ["missing", "model.safetensors"],
                                  ["model.safetensors"]),
    "vocab.txt missing": (_remove("vocab.txt"), ["missing", "vocab.txt"], ["vocab.txt"]),
    "versions.json missing": (_remove("versions.json"), ["missing", "versions.json"], ["versions.json"]),
    "vocab.txt one token longer": (_append_token, ["9670", "vocab_size", "9669"], ["9670", "9669"]),
    "vocab.txt lists a token twice": (_duplicate_token, ["vocab", "twice"], ["twice"]),
    "vocab.txt without special tokens": (_write("vocab.txt", "g__A\ng__B\ng__C\ng__D\n"), ["<pad>"], ["<pad>"]),
    "config.json not JSON": (_write("config.json", "{not json"), ["config.json"], ["json"]),
    "versions.json not JSON": (_write("versions.json", "{not json"), ["versions.json"], ["json"]),
    "config.json n_embd differs": (_edit_json("config.json", n_embd=128), ["does not match config.json", "128"],
                                   ["does not match config.json"]),
    "config.json n_layer smaller": (_edit_json("config.json", n_layer=7), ["does not match", "transformer.h.7"],
                                    ["transformer.h.7"]),
    "config.json n_layer larger": (_edit_json("config.json", n_layer=9),
                                   ["does not match", "no weights for", "transformer.h.8"], ["transformer.h.8"]),
    "weights hold 256 positions": (_reshape_weight, ["transformer.wpe.weight", "(256, 256)", "(512, 256)"],
                                   ["transformer.wpe.weight"]),
    "weights truncated": (_truncate_weights, ["safetensors"], ["safetensors"]),
}


def assert_refused(directory_format, semantic_type, directory, words):
    """The directory fails `directory_format`'s validation with a message holding every word (case aside), and
    cannot be imported as `semantic_type` either."""
    import qiime2
    from qiime2.plugin import ValidationError
    with pytest.raises(ValidationError) as error:
        directory_format(str(directory), mode="r").validate(level="min")
    for word in words:
        assert word.lower() in str(error.value).lower(), (word, str(error.value))
    with pytest.raises(ValidationError):
        qiime2.Artifact.import_data(semantic_type, str(directory))


def copy_model_dir(source, destination):
    shutil.copytree(source, destination)
    return pathlib.Path(destination)


def rewrite_qza(source, destination, replace):
    """Copy a .qza, replacing data files ({path under data/: bytes}), under a fresh UUID with matching checksums,
    so that QIIME 2 cannot serve the untampered original from its cache."""
    new_uuid = str(uuid.uuid4())
    with zipfile.ZipFile(source) as src:
        old_uuid = src.namelist()[0].split("/")[0]
        files = {}
        for name in src.namelist():
            relative = name.split("/", 1)[1]
            data = src.read(name)
            if relative.startswith("data/") and relative[5:] in replace:
                data = replace[relative[5:]]
            elif relative.endswith((".yaml", "VERSION")):
                data = data.replace(old_uuid.encode(), new_uuid.encode())
            files[relative] = data
    files["checksums.md5"] = "".join(f"{hashlib.md5(data).hexdigest()}  {relative}\n"
                                     for relative, data in files.items()
                                     if relative != "checksums.md5").encode()
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for relative, data in files.items():
            dst.writestr(f"{new_uuid}/{relative}", data)
    return destination

"""core.samples on a real case (../shared/cases/metadata-id-mismatch: 8 of 30 metadata IDs written `P-01` where the
table has `P01`): samples the metadata does not hold fail by default, listing them, or are left out with
missing_samples 'ignore'; samples it holds without a value are left out and counted either way; and the table of
samples left out, with why."""
import pandas as pd
import pytest

from q2_mgm.core.samples import (MISSING_SAMPLES, NOT_IN_METADATA, samples_left_out, samples_with_values,
                                 no_value_in)

from ..helpers import shared_path

CASE = "metadata-id-mismatch"
MISSING = [f"P{i:02d}" for i in range(1, 9)]


class CaseError(ValueError):
    pass


@pytest.fixture(scope="module")
def case():
    table_ids = pd.read_csv(shared_path("cases", CASE, "table.tsv"), sep="\t", skiprows=1, index_col=0).columns
    metadata = pd.read_csv(shared_path("cases", CASE, "metadata.tsv"), sep="\t", index_col=0, dtype=str)
    return pd.Index(table_ids), metadata["diagnosis"]


def test_the_default_is_an_error_listing_the_missing_samples_and_the_fix(case):
    sample_ids, diagnosis = case
    assert MISSING_SAMPLES == "error"
    with pytest.raises(CaseError) as error:
        samples_with_values(sample_ids, [("diagnosis", diagnosis)], CaseError, print, where="the table's")
    message = str(error.value)
    for words in ("8 of the table's 30 samples are not in the metadata: " + ", ".join(MISSING) + ".",
                  "missing_samples='ignore'", "--p-missing-samples ignore", "sample IDs"):
        assert words in message, (words, message)


def test_ignore_leaves_them_out_counted_and_listed(case, capsys):
    sample_ids, diagnosis = case
    reports = []
    kept, (values,) = samples_with_values(sample_ids, [("diagnosis", diagnosis)], CaseError, reports.append,
                                          missing_samples="ignore")
    assert kept.tolist() == [s for s in sample_ids if s not in MISSING]
    assert values.tolist() == diagnosis[kept].tolist()
    assert reports == ["left out 8 of 30 samples not in the metadata (missing_samples='ignore'): "
                       + ", ".join(MISSING)]


def test_a_sample_without_a_value_is_left_out_in_either_mode(case):
    sample_ids, diagnosis = case
    diagnosis = diagnosis.copy()
    diagnosis["P12"] = None  # in the metadata, its value empty: unlabelled, not missing
    fixed = diagnosis.rename(lambda i: i.replace("-", ""))  # the IDs corrected
    reports = []
    kept, _ = samples_with_values(sample_ids, [("diagnosis", fixed)], CaseError, reports.append)
    assert "P12" not in kept and len(kept) == 29
    assert reports == ["left out 1 of 30 samples with no 'diagnosis'"]
    reports.clear()
    kept, _ = samples_with_values(sample_ids, [("diagnosis", diagnosis)], CaseError, reports.append,
                                  missing_samples="ignore")
    assert len(kept) == 21 and reports[1] == "left out 1 of 30 samples with no 'diagnosis'"


def test_more_than_ten_missing_are_listed_ten_then_counted(case):
    sample_ids, diagnosis = case
    with pytest.raises(CaseError, match=r": P01, P02, P03, P04, P05, P06, P07, P08, P09, P10 and 20 more\. "):
        samples_with_values(sample_ids, [("diagnosis", diagnosis.rename(lambda i: i + "x"))], CaseError, print)


def test_an_unknown_mode_is_an_error(case):
    with pytest.raises(ValueError, match="missing_samples is 'skip'; use one of error, ignore"):
        samples_with_values(*case[:1], [("diagnosis", case[1])], CaseError, print, missing_samples="skip")


def test_samples_left_out_says_why(case):
    sample_ids, diagnosis = case
    diagnosis = diagnosis.copy()
    diagnosis["P12"] = None
    dropped = pd.DataFrame({"reason": ["all-zero sample"], "total": [0.0]}, index=pd.Index(["P30"]))
    used = pd.Index([s for s in sample_ids if s not in MISSING + ["P12", "P30", "P29"]])
    left_out = samples_left_out(sample_ids.drop("P30"), used, [("diagnosis", diagnosis)], dropped,
                                otherwise="other")
    reasons = left_out.set_index("sample_id")["reason"]
    assert reasons[MISSING].eq(NOT_IN_METADATA).all()
    assert reasons["P12"] == no_value_in("diagnosis")
    assert reasons["P29"] == "other"
    assert reasons["P30"] == "dropped by tokenization: all-zero sample"
    assert len(reasons) == 11

"""core.metadata_checks on plain pandas: what each check lets through, and what it names when it refuses."""
import numpy as np
import pandas as pd
import pytest

from q2_mgm.core.metadata_checks import (check_batches, check_groups, check_min_samples, check_new_cohort,
                                         check_target_varies, genus_presence, id_names, unvalidated_batches)


class Refused(ValueError):
    pass


def test_id_names_are_as_written():
    assert id_names(pd.Series([1.0, 2.0, 10249001.0, 2.5, np.nan])).tolist()[:4] == ["1", "2", "10249001", "2.5"]
    assert id_names(pd.Series(["S1", "S2"])).tolist() == ["S1", "S2"]


def test_a_target_that_varies_passes_and_one_value_is_named():
    check_target_varies(pd.Series(["a", "b", None]), "status", "classification", Refused)
    with pytest.raises(Refused, match="'age' holds one value, 30,"):
        check_target_varies(pd.Series([30.0, 30.0, np.nan]), "age", "regression", Refused)


def test_groups_with_each_class_in_two_groups_pass():
    check_groups(["s1", "s2", "s1", "s2"], "study", Refused, "k-fold", ["a", "a", "b", "b"], "status")
    with pytest.raises(Refused, match="Class 'a' of 'status' is held by one group of 'study' only, 's1'"):
        check_groups(["s1", "s2", "s1", "s2"], "study", Refused, "k-fold", ["a", "b", "a", "b"], "status")


def test_one_one_class_batch_among_mixed_ones_passes():
    check_batches(["r1"] * 3 + ["r2"] * 4, "run", ["a"] * 3 + ["a", "b", "a", "b"], "status", "classification", 3,
                  Refused)
    assert unvalidated_batches(["r1"] * 3 + ["r2"] * 4, ["a"] * 3 + ["a", "b", "a", "b"]) == ["r2"]


def test_a_new_cohort_without_batches_is_one_cohort():
    check_new_cohort(None, 3, 3, Refused)
    with pytest.raises(Refused) as error:
        check_new_cohort(None, 2, 3, Refused)
    assert "no batches were given" in str(error.value) and "leave batches out" not in str(error.value)


def test_min_samples_counts_samples_holding_a_genus_per_class():
    sentences = pd.Series(["<bos> g__A g__B <eos>", "<bos> g__A <eos>", "<bos> g__B <eos>"], index=["x", "y", "z"])
    assert genus_presence(sentences).sum().to_dict() == {"g__A": 2, "g__B": 2}
    groups = pd.Series(["c", "c", "d"], index=["x", "y", "z"])
    check_min_samples(sentences, groups, 1, "status", Refused)
    with pytest.raises(Refused, match=r"in class 'd' of 'status' .*c 2, d 1.*Lower min_samples to 1"):
        check_min_samples(sentences, groups, 2, "status", Refused)


def test_min_samples_counts_subjects_where_they_are_the_units():
    sentences = pd.Series(["<bos> g__A <eos>"] * 4, index=["x1", "x2", "y1", "z1"])
    groups = pd.Series(["c"] * 4, index=sentences.index)
    subjects = pd.Series(["x", "x", "y", "z"], index=sentences.index)
    check_min_samples(sentences, groups, 4, "status", Refused)  # 4 samples hold g__A
    with pytest.raises(Refused, match=r"min_samples=4 subjects in any class of 'status' \(.*c 3\).*to 3"):
        check_min_samples(sentences, groups, 4, "status", Refused, subjects)  # but 3 subjects

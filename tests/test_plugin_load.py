"""QIIME 2 imports every installed plugin before it runs any action, so loading q2-mgm must not import what runs the
model (CONTRIBUTING: where heavy imports live). Each check runs in a fresh interpreter: this test session has long
since imported torch."""
import json
import os
import pathlib
import subprocess
import sys

import q2_mgm

# statsmodels.stats: the meta-analysis of the cross-study page (core.meta_analysis imports it in its function)
HEAVY = ("torch", "transformers", "accelerate", "safetensors.torch", "matplotlib.pyplot", "statsmodels.stats")
CORPUS = """
import pandas as pd
genera = ["g__Bacteroides", "g__Prevotella", "g__Faecalibacterium", "g__Roseburia"]
counts = pd.DataFrame([[10, 5, 0, 1], [0, 3, 8, 2], [4, 4, 4, 4]], columns=genera,
                      index=pd.Index(["s1", "s2", "s3"], name="sample-id"), dtype=float)
"""


def _heavy_modules_after(code):
    """The heavy modules in sys.modules after running `code` in a fresh interpreter of this venv, run beside the
    q2_mgm this session imported, so that the checkout under test is the one imported."""
    script = f"import json, sys\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=pathlib.Path(q2_mgm.__file__).parents[1], env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plugin_load_imports_no_model_libraries():
    assert _heavy_modules_after("import q2_mgm.plugin_setup") == []


def test_corpus_format_validated_and_viewed_without_model_libraries():
    code = f"""
import q2_mgm.plugin_setup
from q2_mgm._transformers import _corpus_to_format, _format_to_dataframe
from q2_mgm.core.tokenizer import tokenize_matrix
{CORPUS}
fmt = _corpus_to_format(tokenize_matrix(counts.to_numpy(), counts.index, counts.columns))
fmt.validate(level="max")
assert list(_format_to_dataframe(fmt).index) == ["s1", "s2", "s3"]
"""
    assert _heavy_modules_after(code) == []


def test_tokenize_through_the_artifact_api_without_model_libraries(tmp_path):
    """tokenize, the corpus saved, loaded (validated), validated again and viewed. The Artifact API loads every
    installed plugin, and q2-sample-classifier's imports matplotlib.pyplot: only the model libraries are checked."""
    code = f"""
import pandas as pd
import qiime2
from qiime2.plugins import mgm
{CORPUS}
table = qiime2.Artifact.import_data("FeatureTable[Frequency]", counts)
corpus, = mgm.actions.tokenize(table=table)
corpus = qiime2.Artifact.load(corpus.save({str(tmp_path / "corpus")!r}))
corpus.validate(level="max")
assert list(corpus.view(pd.DataFrame).index) == ["s1", "s2", "s3"]
"""
    assert set(_heavy_modules_after(code)) <= {"matplotlib.pyplot"}

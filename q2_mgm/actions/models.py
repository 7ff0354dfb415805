from .._formats import MGMModelDirFmt
from ..core.models import load_general_model, save_model
from ._util import report


def general_model() -> MGMModelDirFmt:
    model, vocabulary, provenance = load_general_model()
    report(f"general model: {model.config.n_layer} layers, {len(vocabulary)} tokens, "
           f"source sha256 {provenance['source_sha256']}")
    out = MGMModelDirFmt()
    save_model(model, vocabulary, out.path, **provenance)
    return out

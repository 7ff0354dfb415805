"""The network a supervised model trains: upstream's GPT2ForSequenceClassification on a pretrained encoder (or
randomly initialised), with the first layers frozen."""
import copy
from typing import Optional

import transformers

from ..models import build_model
from ..vocab import PAD_ID


def sequence_model(task: str, n_labels: int, backbone: Optional[transformers.PreTrainedModel] = None,
                   config: Optional[transformers.GPT2Config] = None,
                   random_state: int = 0) -> transformers.GPT2ForSequenceClassification:
    """A GPT2ForSequenceClassification on the backbone's weights, or randomly initialised from config."""
    config = copy.deepcopy(backbone.config if backbone is not None else config)
    config.architectures = ["GPT2ForSequenceClassification"]
    config.num_labels = n_labels if task == "classification" else 1
    config.problem_type = "single_label_classification" if task == "classification" else "regression"
    config.pad_token_id = PAD_ID
    if task == "classification":
        config.id2label = {i: str(i) for i in range(n_labels)}
        config.label2id = {str(i): i for i in range(n_labels)}
    transformers.set_seed(random_state)
    model = build_model(config)
    if backbone is not None:
        model.transformer.load_state_dict(backbone.transformer.state_dict())
    return model


def freeze(model: transformers.GPT2ForSequenceClassification, n_layers: int) -> None:
    """Freeze the embeddings and the first n_layers blocks (all of them, and ln_f, freezes the encoder; a larger
    n_layers freezes all of it, so the default 8 suits a smaller pretrained model too)."""
    encoder = model.transformer
    n_layers = min(n_layers, encoder.config.n_layer)
    frozen = [encoder.wte, encoder.wpe, *encoder.h[:n_layers]] if n_layers else []
    if n_layers == encoder.config.n_layer:
        frozen.append(encoder.ln_f)
    for module in frozen:
        module.requires_grad_(False)


def encoder_frozen(model: transformers.GPT2ForSequenceClassification, freeze_layers: int) -> bool:
    """Whether freezing `freeze_layers` layers leaves nothing of the encoder to train (the head is then fit exactly)."""
    return freeze_layers >= model.config.n_layer

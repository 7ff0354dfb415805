"""Sentences as a torch dataset for the transformers Trainer, and the collator that pads a batch: one for
fine-tuning (a target per sentence) and pretraining (the sentence is its own target)."""
from typing import Optional, Sequence

import numpy as np
import torch

from .inference import padded_batch


class SentenceDataset(torch.utils.data.Dataset):
    """Token-id arrays, each with its target where `targets` is given (class index or standardised value)."""

    def __init__(self, token_ids: Sequence[np.ndarray], targets: Optional[np.ndarray] = None):
        self.token_ids, self.targets = token_ids, targets

    def __len__(self):
        return len(self.token_ids)

    def __getitem__(self, i):
        item = {"input_ids": self.token_ids[i]}
        if self.targets is not None:
            item["labels"] = self.targets[i]
        return item


def collate(items: Sequence[dict]) -> dict:
    """A padded batch: input_ids and attention_mask (batch x longest), and labels: the items' targets (float for
    regression, long for classes), or for a language model the input ids with padding masked as -100."""
    input_ids, mask = padded_batch([item["input_ids"] for item in items])
    if "labels" not in items[0]:
        return {"input_ids": input_ids, "attention_mask": mask, "labels": input_ids.masked_fill(~mask, -100)}
    labels = torch.tensor(np.array([item["labels"] for item in items]))
    return {"input_ids": input_ids, "attention_mask": mask,
            "labels": labels.float() if labels.is_floating_point() else labels.long()}

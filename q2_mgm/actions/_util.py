"""What the actions share: progress messages (shown by q2cli with --verbose) and device choice."""
import sys

import torch


def report(message):
    print(f"[q2-mgm] {message}", file=sys.stdout, flush=True)


def resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU here; use device='auto' or 'cpu'.")
    return device

"""Pretraining on several GPUs or machines: `mgm pretrain` and `pretrain-generator` under torchrun, reading and
writing QIIME 2 artifacts so that provenance survives.

    torchrun --nproc_per_node 4 -m q2_mgm.distributed pretrain \\
        --corpus corpus-a.qza --corpus corpus-b.qza --output-dir pretrained [--model general-model.qza] \\
        [--metadata-file metadata.tsv --metadata-column delivery] [--p-epochs 10 ...]

Every process runs the same QIIME 2 action on the same inputs; the transformers Trainer splits the batches across
them (DDP: NCCL on GPUs, gloo on CPUs) and keeps their weights identical, and the first process alone saves the
outputs (`pretrained_model.qza` or `generator.qza`, and `history.qza`) into --output-dir. Multi-node: run the same
command on each machine with torchrun's --nnodes, --node_rank and --rdzv_endpoint.
"""
import argparse
import os
import pathlib
import sys

ACTIONS = {"pretrain": "pretrained_model", "pretrain-generator": "generator"}


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m q2_mgm.distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("--corpus", action="append", required=True, help="a SampleData[MGMCorpus] .qza (repeat)")
    parser.add_argument("--model", help="an MGMModel .qza to start from (default: the general model)")
    parser.add_argument("--metadata-file", help="sample metadata (pretrain-generator)")
    parser.add_argument("--metadata-column", help="the label column (pretrain-generator)")
    parser.add_argument("--output-dir", required=True, type=pathlib.Path)
    known, rest = parser.parse_known_args(argv)
    if known.action == "pretrain-generator" and not (known.metadata_file and known.metadata_column):
        parser.error("pretrain-generator needs --metadata-file and --metadata-column")
    if len(rest) % 2 or not all(name.startswith("--p-") for name in rest[::2]):
        parser.error(f"parameters go as --p-NAME VALUE pairs, as with qiime; got {' '.join(rest)}")
    return known, {name[4:].replace("-", "_"): value for name, value in zip(rest[::2], rest[1::2])}


def _typed(action, parameters):
    """Parameter strings as the action's types (QIIME 2 parses them as q2cli does)."""
    signature = action.signature.parameters
    unknown = sorted(set(parameters) - set(signature))
    if unknown:
        raise SystemExit(f"{action.id} has no parameter {unknown[0]!r}; it has {', '.join(sorted(signature))}.")
    return {name: signature[name].qiime_type.decode(value) for name, value in parameters.items()}


def main(argv=None):
    import qiime2
    from qiime2.plugins import mgm

    known, parameters = parse(sys.argv[1:] if argv is None else argv)
    action = getattr(mgm.actions, known.action.replace("-", "_"))
    inputs = {"corpora": [qiime2.Artifact.load(path) for path in known.corpus]}
    if known.model:
        inputs["model"] = qiime2.Artifact.load(known.model)
    if known.action == "pretrain-generator":
        inputs["metadata"] = qiime2.Metadata.load(known.metadata_file).get_column(known.metadata_column)
    model, history = action(**inputs, **_typed(action, parameters))
    if int(os.environ.get("RANK", "0")) == 0:
        known.output_dir.mkdir(parents=True, exist_ok=True)
        for name, result in ((ACTIONS[known.action], model), ("history", history)):
            print(f"Saved {result.type} to: {result.save(str(known.output_dir / name))}", flush=True)


if __name__ == "__main__":
    main()

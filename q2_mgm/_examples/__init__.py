"""Usage examples built from in-memory data: a small gut-like table with Greengenes taxonomy.

Each example runs its one action; the inputs that other actions make (corpora, models, predictions) come from
factories that run those actions once per process. Every interface then shows just the action at hand, and
q2galaxy, which turns each example into its tool's test, finds only that tool's parameters and outputs there.

data.py holds the in-memory data and the factories that make each example's inputs; usage.py the examples of the
actions on one study (corpus, supervised, keystone, generative, trajectories); cross_validation.py those of the
cross-validation actions and pipelines, and the fold artifacts they start from."""

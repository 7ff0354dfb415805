"""keystone-genera and keystone-report for a model fit with batches (a classifier or a regressor): such a model
predicts with the across-study recipe (core.transfer's mgm-transfer: linear models on the frozen model's pooled
hidden states and the sentence's likelihood, and on CLR abundances, each batch standardised on its own samples),
not with the attention of a network head, so its genera are scored by their contributions to its decision
(core.contributions.explain) and summarised per group by their effect (core.markers.group_effects).

Every sample of the corpus is explained, each batch standardised on all of its samples as predict-classification
(predict-regression) does, so a sample's contributions are those of the score prediction gives it with the same
batches. A classifier's groups are its classes: only the samples of a class the model has are summarised (the
others are listed). A regressor's groups are `higher` and `lower`: the samples whose value is above the median of
their batch's values, and the rest (higher_or_lower: within each batch, as the contributions are relative to the
batch's average); a regressor explains the prediction in the target's units.
No sample's contributions depend on the metadata column. Per group, a genus's effect is its mean contribution (CLR
and MGM parts) to the group's output in the group's samples less that in the others' (with two groups, higher
and lower among them, both get the same effect); its interval is a bootstrap of samples (subjects where given:
each subject's contributions averaged first) within the group and within the others. Each group ranks the genera
whose higher abundance points to it (points_to). Plain pandas in and out; `report` gets the progress."""
import dataclasses
import json
import pathlib
import warnings
from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from .contributions import Contributions, explain, mgm_share
from .inference import encode, language_model_features, resolve_device
from .keystone import KeystoneError, KeystoneSummary, bootstrap_means, per_subject
from .markers import HIGHER, LOWER, abundance_effects, effect_targets, group_effects
from .metadata_checks import batch_of_each_sample, genus_presence, id_names
from .samples import listed, samples_with_values
from .schemas import TRAINING_RECORD_FILE
from .settings import CONTRIBUTION_STEPS
from .tokenizer import Corpus
from .training import load_trained_model
from .transfer import MIN_BATCH_SAMPLES, SampleFeatures

Report = Callable[[str], None]
METHOD = "gradient"  # the one method that reads a batch-fit model's decision


def training_record(model_dir: Union[str, pathlib.Path]) -> Optional[dict]:
    """training.json of a supervised model (JSON only), or None for a pretrained model."""
    record = pathlib.Path(model_dir) / TRAINING_RECORD_FILE
    return json.loads(record.read_text()) if record.is_file() else None


def fit_with_batches(record: Optional[dict]) -> Optional[str]:
    """The batches column a supervised model was fit with (its training_record's transfer record; 'batches' where
    the record names none), or None for a model fit without batches and a pretrained model (record None)."""
    transfer = (record or {}).get("transfer")
    return None if not transfer else str(transfer.get("batches_column") or "batches")


def check_batch_inputs(model_dir: Union[str, pathlib.Path], method: str, batches: Optional[str],
                       attention_samples: bool = False) -> bool:
    """Before any work: whether the model was fit with batches (then explained by its contributions), with
    KeystoneError where the inputs do not fit it. batches: the name of the batches column given, or None;
    attention_samples: whether samples were picked for attention maps (keystone-report)."""
    record = training_record(model_dir) or {}
    fit_column = fit_with_batches(record)
    kind = "regressor" if record.get("task") == "regression" else "classifier"
    if fit_column is None:
        if kind == "regressor":
            raise KeystoneError(
                "This regressor was fit without batches. keystone-genera explains a regressor by each genus's "
                "contribution to its predictions, which the across-study recipe of a regressor fit with batches "
                "gives (a regressor has no classes whose attention to compare). Fine-tune the regressor with "
                "batches (qiime mgm fine-tune --p-task regression --m-batches-file METADATA --m-batches-column "
                "COLUMN, the study or run of each sample; for a single study, a column with the same value for "
                "every sample), then give keystone-genera or keystone-report the same batches and --p-method "
                "gradient.")
        if batches is not None:
            raise KeystoneError(
                f"batches ({batches!r}) was given, but this model was not fit with batches, so it standardises "
                "no batch and scores genera without them: leave batches out (no --m-batches-file / "
                "--m-batches-column), or fine-tune with batches to get a model that corrects each batch on itself.")
        return False
    if method != METHOD:
        raise KeystoneError(
            f"This {kind} was fit with batches ({fit_column!r}): it predicts with the across-study recipe, "
            "linear models on the frozen model's pooled hidden states, the sentence's likelihood and the CLR "
            "abundances, each batch standardised on its own samples, not with the attention of a "
            f"{kind} head; so method {method!r} (which reads that attention) does not apply. Use method "
            "'gradient' (--p-method gradient): each genus's contribution to the model's decision, its CLR part "
            "exact and its MGM part by integrated gradients.")
    if batches is None:
        action = "predict-regression" if kind == "regressor" else "predict-classification"
        raise KeystoneError(
            f"This {kind} was fit with batches ({fit_column!r}) and standardises each batch on its own "
            "samples, so explaining its decision needs each sample's batch: pass the batches column, as to "
            f"{action} (--m-batches-file METADATA --m-batches-column {fit_column}, or the column "
            "that names the corpus's studies).")
    if attention_samples:
        raise KeystoneError(
            f"attention_samples picks samples for attention maps, which do not apply to a {kind} fit with "
            f"batches (it reads no {kind} head's attention): leave attention_samples out "
            "(no --m-attention-samples-file); the page lists each sample's contributions instead.")
    return True


def summarised_groups(model_dir: Union[str, pathlib.Path], column: pd.Series, batches: pd.Series) -> pd.Series:
    """Before the model runs, from a metadata column (sample ID -> value, named; samples without a value left
    out): each summarised sample's group. For a classifier fit with batches, the samples of a class the model has
    (a numeric column's classes named as written); for a regressor, `higher` or `lower` within each batch of
    `batches` (sample ID -> batch; higher_or_lower). KeystoneError for a regressor given values that are not
    numbers or that vary within no batch."""
    record = training_record(model_dir) or {}
    values = column.dropna()
    if record.get("task") == "regression":
        return higher_or_lower(values, f"metadata column {column.name!r}", batches)[0]
    values = id_names(values)
    return values[values.isin(record.get("labels") or [])]


def higher_or_lower(values: pd.Series, source: str, batches: pd.Series) -> Tuple[pd.Series, pd.Series, str]:
    """(sample ID -> `higher` (the value is above the median of its batch's values) or `lower` (at or below it),
    the samples left out: those of a batch with no value above its median, sample ID -> value, and each batch's
    median as the page and the report name them: 'batch: median, ...'). The two groups a regressor's genera are
    summarised by, split within each batch of `batches` (sample ID -> batch) because each sample's contributions
    are relative to its batch's average: a split over all samples would compare batches.
    KeystoneError where a value is not a number or no batch has a value above its median (nothing to compare)."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        wrong = values[numbers.isna()]
        raise KeystoneError(
            f"A regressor's genera are summarised by numbers split at their batch's median (higher and lower), and "
            f"{source} holds values that are not numbers ({listed([f'{i}: {v}' for i, v in wrong.items()], 3)}). "
            "Give the numeric column the regressor was fit on (e.g. age; declared numeric with #q2:types numeric), "
            "or leave metadata out to split the values the model predicts.")
    batch = batches.reindex(numbers.index).to_numpy()
    medians = numbers.groupby(batch).median()
    above = numbers > medians.reindex(batch).to_numpy()
    varies = above.groupby(batch).transform("any")
    if not varies.any():
        raise KeystoneError(
            f"No value of {source} lies above its batch's median: within every batch of {batches.name!r} the "
            "samples would all be in the lower half, so there is nothing to compare. Give a column whose values "
            "vary within the batches (not the batches column itself), or leave metadata out to split the values "
            "the model predicts.")
    groups = pd.Series(np.where(above, HIGHER, LOWER), index=numbers.index, name=values.name)
    return groups[varies], numbers[~varies], ", ".join(f"{b}: {m:g}" for b, m in medians.items())


def _summarised_classes(groups: pd.Series, labels: List[str], grouping: str,
                        report: Report) -> Tuple[pd.Series, pd.Series]:
    """(the samples of a class of the classifier, the rest: explained, not summarised). KeystoneError where fewer
    than two of the model's classes are left: an effect compares a class with the others."""
    known = groups.isin(labels)
    unexplained = groups[~known]
    if len(unexplained):
        report(f"{len(unexplained)} of {len(groups)} samples are of a class the model does not know "
               f"({', '.join(sorted(map(str, set(unexplained))))}): explained, not summarised (keystone-report "
               "lists them on its page)")
    present = sorted(set(groups[known]), key=labels.index)
    if len(present) < 2:
        held = ", ".join(f"{c} ({n})" for c, n in groups.value_counts().sort_index().items())
        raise KeystoneError(f"The samples of {grouping} hold {len(present)} of the classifier's classes "
                            f"({', '.join(labels)}): {held}. A genus's effect compares a class's samples with the "
                            "others', so it needs samples of two of them at least. Group by a column that holds "
                            "two of the classifier's classes, or leave metadata out (the classes the model "
                            "predicts).")
    return groups[known], unexplained


@dataclasses.dataclass
class ExplainedSamples:
    """Every sample's contributions to a batch-fit model's decision, and the samples summarised."""
    contributions: Dict[str, Contributions]  # output name (core.contributions.output_names) -> parts, every sample
    classes: List[str]  # the classifier's classes in order; a regressor's groups, [LOWER, HIGHER]
    batches: pd.Series  # sample ID -> batch, every sample explained
    groups: pd.Series  # sample ID -> group, the samples summarised (a class of the model's; higher or lower)
    grouping: str  # where the groups came from
    presence: pd.DataFrame  # samples x genera (the contributions' columns): the sentence holds the genus
    abundances: pd.DataFrame  # samples x genera: the relative abundances tokenization read, every sample explained
    # sample ID -> class (regressor: value) of the samples explained and not summarised: a classifier's of a class
    # the model lacks, a regressor's of a batch with no value above its median
    unexplained: pd.Series = dataclasses.field(default_factory=lambda: pd.Series(dtype=object))
    task: str = "classification"

    @property
    def genera(self) -> pd.Index:
        return next(iter(self.contributions.values())).clr.columns

    def targets(self) -> List[Tuple[str, int]]:
        """(group, output) of each group's effect: each class against the other on its own log-odds. With two
        classes both read the log-odds of the second: the first's log-odds are minus them, and so are its samples
        against the others, so both classes get the same effect; so do a regressor's lower and higher, on its
        prediction. With more classes, each class its own logit."""
        names = list(self.contributions)
        if len(self.classes) == 2:
            return [(self.classes[0], 0), (self.classes[1], 0)]
        return [(c, names.index(name)) for c, name in zip(self.classes, names)]

    def units(self, subjects: Optional[pd.Series], report: Report):
        """({output: (total, clr, mgm) summarised units x genera}, presence units x genera, units' groups): per
        sample, or per subject (each subject's contributions averaged within its class; core.keystone.per_subject)
        where `subjects` (sample ID -> subject) is given."""
        ids = self.groups.index
        parts = {name: tuple(frame.loc[ids] for frame in (c.total, c.clr, c.mgm))
                 for name, c in self.contributions.items()}
        presence = self.presence.loc[ids].astype(float)
        if subjects is None:
            return parts, presence > 0, self.groups
        subjects = id_names(subjects)
        groups = None
        for name in parts:
            averaged = []
            for frame in parts[name]:
                units, groups = per_subject(frame, self.groups, subjects)
                averaged.append(units)
            parts[name] = tuple(averaged)
        presence, groups = per_subject(presence, self.groups, subjects)
        report(f"averaged {len(ids)} samples' contributions within {len(groups)} subjects: effects and intervals "
               "count subjects, not samples")
        return parts, presence > 0, groups


def explain_samples(corpus: Corpus, model_dir: Union[str, pathlib.Path], column: Optional[pd.Series],
                    batches: pd.Series, device: str, report: Report,
                    steps: int = CONTRIBUTION_STEPS) -> ExplainedSamples:
    """Every corpus sample's contributions to the decision of the batch-fit classifier or regressor in `model_dir`
    (core.contributions.explain), each batch of `batches` (sample ID -> batch, named) standardised on all of its
    samples as prediction does. The samples summarised and their groups come from `column` (sample ID -> value,
    named; None: the classes, or for a regressor the values, the model predicts): a classifier's samples of a
    class of the model's; a regressor's samples by higher_or_lower, within each batch. Everything about the
    metadata is checked before the model runs. KeystoneError (a model fit without batches, no abundances, batches
    or groups that do not fit), ValueError (an unknown device)."""
    trained, vocabulary, _ = load_trained_model(model_dir)
    if trained.transfer is None:
        raise KeystoneError(f"keystone-genera explains a model fit with batches here; this {trained.task} model was "
                            "fit without them. Fine-tune with batches.")
    regression = trained.task == "regression"
    device = resolve_device(device)
    batch_values = batch_of_each_sample(corpus.samples.index, batches, MIN_BATCH_SAMPLES, KeystoneError, "explain")
    abundances = corpus.abundance_table()
    if abundances is None:
        raise KeystoneError("The across-study recipe reads the corpus's genus abundances, and this corpus holds none "
                            "(it was generated, or made by an older q2-mgm). Tokenize the table again.")
    classes = [LOWER, HIGHER] if regression else list(trained.labels)
    groups, grouping, unexplained = None, "the classes the model predicts", pd.Series(dtype=object)
    if column is not None:
        grouping = f"metadata column {column.name!r}"
        _, (values,) = samples_with_values(corpus.samples.index, [(column.name, column)], KeystoneError, report,
                                           missing_samples="ignore")
        if regression:
            groups, unexplained, medians = higher_or_lower(values, grouping, batch_values)
            grouping += f", split at each batch's median ({medians})"
        else:
            groups, unexplained = _summarised_classes(id_names(values), trained.labels, grouping, report)
    token_ids = encode(corpus.samples.sentence, vocabulary)
    report(f"features of {len(token_ids)} samples from the frozen encoder, each of the "
           f"{batch_values.nunique()} batches of {batches.name!r} standardised on its own samples")
    embeddings, likelihood = language_model_features(trained.model, token_ids, device)
    record = trained.transfer.record
    data = SampleFeatures(embeddings, likelihood, abundances, batch_values.to_numpy(), record["clr_parts"],
                          record["clr_genera"])
    if groups is None:
        outputs = trained.transfer.predict(data)
        if regression:
            predicted = pd.Series(outputs * trained.target_std + trained.target_mean, index=corpus.samples.index)
            groups, unexplained, medians = higher_or_lower(predicted, "the values the model predicts", batch_values)
            grouping = f"the values the model predicts, split at each batch's median ({medians})"
        else:
            predicted = pd.Series(trained.predict_classes(outputs), index=corpus.samples.index)
            groups, unexplained = _summarised_classes(predicted, trained.labels, grouping, report)
    if regression and len(unexplained):
        report(f"{len(unexplained)} samples of batches with no value above their median are explained, not "
               "summarised (keystone-report lists them on its page)")
    report(f"explaining the decision of {len(token_ids)} samples ({len(groups)} summarised, grouped by "
           f"{grouping}): CLR part exact, MGM part by integrated gradients ({steps} steps)")
    contributions = explain(trained.transfer, data, np.arange(len(token_ids)), trained.labels, trained.model,
                            token_ids, vocabulary, unit=trained.target_std if regression else 1.0, steps=steps,
                            device=device, progress=lambda done, total: report(f"explained {done}/{total} samples"))
    genera = next(iter(contributions.values())).clr.columns
    presence = genus_presence(corpus.samples.sentence).reindex(columns=genera, fill_value=False)
    return ExplainedSamples(contributions, classes, batch_values, groups, grouping, presence, abundances,
                            unexplained, trained.task)


def summarise_effects(explained: ExplainedSamples, subjects: Optional[pd.Series], min_samples: int,
                      n_bootstrap: int, confidence: float, random_state: int, report: Report) -> KeystoneSummary:
    """Per class and genus: effect (mean contribution in the class's units less in the others'; markers'
    group_effects, signed toward the class), ci_low and ci_high (bootstrap percentile interval, the class's units
    and the others' resampled apart, n_bootstrap times seeded by random_state), effect_clr and effect_mgm (the
    effect's CLR and MGM parts), n_samples and prevalence (units of the class whose sentence holds the genus),
    mgm_share (core.contributions.mgm_share over the summarised samples: 0 to 1, the share of the genus's
    contributions that its MGM part makes), points_to (the class a higher abundance of the genus points to: the sign
    of core.markers.abundance_effects over every sample explained; with more than two classes, the class whose
    logit it raises most) and rank (1 = the largest effect among the genera pointing to the class; NaN for the
    others and for genera held by fewer than min_samples units of the class). The effect is positive for a genus
    that separates the class's samples from the others' in the direction the model reads it, whichever class it is
    enriched in (with two classes both get the same effect), so the ranking of a class lists the genera pointing to
    it. importance: genera x classes of the effect of the genera pointing to the class, 0 for the others and where
    it is undefined. A regressor's classes are its groups lower and higher (ExplainedSamples.classes), its effects
    in the target's units: a genus points to `higher` where a higher abundance raises the prediction."""
    parts, presence, groups = explained.units(subjects, report)
    names = list(explained.contributions)
    targets = effect_targets(explained.task, explained.classes)
    direction = abundance_effects([c.total for c in explained.contributions.values()], explained.abundances,
                                  targets, explained.batches.reindex(explained.abundances.index).to_numpy())
    if len(explained.classes) == 2:
        points_to = np.where(direction[targets[0]] > 0, explained.classes[1], explained.classes[0])
    else:
        points_to = direction[targets].idxmax(axis=1).to_numpy()
    points_to = pd.Series(points_to, index=direction.index).reindex(explained.genera)
    # the groups are labels for a regressor too (its halves): each group's samples against the others'
    effects = [group_effects([parts[name][k] for name in names], groups, "classification", explained.classes)
               for k in range(3)]  # total, clr, mgm: genera x targets
    rng = np.random.default_rng(random_state)
    tail = 50 * (1 - confidence)
    tables, importance, drawn = [], {}, {}
    for group, output in explained.targets():
        name = names[output]
        target = targets[output]
        inside = (groups == target).to_numpy()
        total = parts[name][0].to_numpy()
        low = high = np.full(total.shape[1], np.nan)
        if inside.any() and not inside.all():  # else the effect is undefined (NaN): no class to compare
            if output not in drawn:  # two classes share their output's draws, and their effect
                drawn[output] = (
                    bootstrap_means(total[inside], np.ones(total[inside].shape, bool), n_bootstrap, rng)
                    - bootstrap_means(total[~inside], np.ones(total[~inside].shape, bool), n_bootstrap, rng))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                low, high = np.nanpercentile(drawn[output], [tail, 100 - tail], axis=0)
        mine = (groups == group).to_numpy()
        held = presence[mine].sum(0).to_numpy()
        summarised = explained.groups.index
        contributions = explained.contributions[name]
        share = mgm_share(dataclasses.replace(contributions, clr=contributions.clr.loc[summarised],
                                              mgm=contributions.mgm.loc[summarised]))
        table = pd.DataFrame({
            "group": group, "genus": explained.genera, "effect": effects[0][target].to_numpy(),
            "ci_low": low, "ci_high": high, "effect_clr": effects[1][target].to_numpy(),
            "effect_mgm": effects[2][target].to_numpy(), "n_samples": held,
            "prevalence": held / max(mine.sum(), 1),
            "mgm_share": share.reindex(explained.genera).to_numpy(), "points_to": points_to.to_numpy()})
        table["rank"] = table.effect.abs().where((table.n_samples >= min_samples) & (table.points_to == group)).rank(
            ascending=False, method="min")
        tables.append(table.sort_values(["rank", "effect"], ascending=[True, False], na_position="last"))
        mine = table.set_index("genus")
        importance[group] = mine.effect.where(mine.points_to == group).reindex(explained.genera).fillna(0.0)
    return KeystoneSummary(pd.concat(tables, ignore_index=True),
                           pd.DataFrame(importance, index=explained.genera), int(min_samples))


def sample_parts(explained: ExplainedSamples) -> pd.DataFrame:
    """One row per sample and output: its batch, its class (empty where not summarised), the decision score less
    its batch's average, and its parts (the genera's CLR and MGM sums, other, gap and relative_gap); score =
    clr + mgm + other + gap."""
    rows = []
    for name, c in explained.contributions.items():
        rows.append(pd.DataFrame({
            "output": name, "batch": explained.batches.reindex(c.score.index),
            "group": explained.groups.reindex(c.score.index), "summarised": c.score.index.isin(explained.groups.index),
            "score": c.score, "clr": c.clr.sum(1), "mgm": c.mgm.sum(1), "other": c.other, "gap": c.gap,
            "relative_gap": c.relative_gap}, index=c.score.index.rename("sample-id")))
    return pd.concat(rows)


def long_contributions(explained: ExplainedSamples) -> pd.DataFrame:
    """Every sample's contribution of every genus, long: sample-id, output, genus, clr, mgm, total."""
    frames = []
    for name, c in explained.contributions.items():
        clr = c.clr.rename_axis(index="sample-id", columns="genus").stack().rename("clr")
        mgm = c.mgm.rename_axis(index="sample-id", columns="genus").stack().rename("mgm")
        frame = pd.concat([clr, mgm], axis=1).reset_index()
        frame.insert(1, "output", name)
        frame["total"] = frame["clr"] + frame["mgm"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def other_share(explained: ExplainedSamples) -> float:
    """The median over samples and outputs of |other| / (|other| + the sum over genera of |contribution|): how
    much of a sample's score no genus makes."""
    shares = [c.other.abs() / (c.other.abs() + c.total.abs().sum(1)) for c in explained.contributions.values()]
    return float(pd.concat(shares).median())

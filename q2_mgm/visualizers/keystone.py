"""keystone-report: the top genera of each class with bootstrap confidence intervals, a genus x class heatmap,
differences between classes with their significance, and attention maps of samples the user picks. The core
modules that run the model (torch) are imported by the functions that call them, when called (CONTRIBUTING)."""
import numpy as np
import pandas as pd
import qiime2

from .._formats import ModelFiles
from .._progress import report
from ..core.settings import REPORT
from ..core.tokenizer import Corpus
from ._render import html_table, overview_table, render_page, save_figure, subplots, write_tsv

UNITS = {"attention": "attention relative to an even share (1 = even)",
         "rollout": "rolled-out attention relative to an even share (1 = even)",
         "gradient": "integrated gradients of the logit of each sample's own class, in logit units; so each "
                     "group's column explains its own class's output"}
DEFAULT_MAPS = 2  # attention maps shown when the user picks no samples: the first samples of each group


def keystone_report(output_dir: str, corpus: Corpus, model: ModelFiles,
                    metadata: qiime2.MetadataColumn = None,
                    subjects: qiime2.CategoricalMetadataColumn = None,
                    batches: qiime2.CategoricalMetadataColumn = None, method: str = REPORT["method"],
                    min_samples: int = REPORT["min_samples"], top_genera: int = REPORT["top_genera"],
                    n_bootstrap: int = REPORT["n_bootstrap"], confidence: float = REPORT["confidence"],
                    attention_samples: qiime2.Metadata = None, random_state: int = 0,
                    device: str = "auto") -> None:
    from ..core.keystone import aggregate, check_corpus, class_differences
    from ..core.keystone_batches import check_batch_inputs
    from ..core.keystone_samples import check_before_scoring, check_rankable, score_samples
    check_corpus(corpus.samples.index)
    column = None if metadata is None else metadata.to_series()
    subject_of = None if subjects is None else subjects.to_series()
    batch_fit = check_batch_inputs(model.path, method, None if batches is None else batches.name,
                                   attention_samples is not None)
    check_before_scoring(corpus, model.path, column, subject_of, method,
                         batches.to_series() if batch_fit else None, min_samples)
    if batch_fit:
        return _batch_fit_report(output_dir, corpus, model, column, subject_of, batches, min_samples, top_genera,
                                 n_bootstrap, confidence, random_state, device)
    scored = score_samples(corpus, model.path, column, method, device, report)
    if metadata is None:  # the classes the model predicts are known only now; still before the bootstrap
        check_rankable(corpus, scored.groups, subject_of, min_samples, "the predicted classes")
    shown = _chosen_samples(scored, None if attention_samples is None else list(attention_samples.ids),
                            set(corpus.samples.index))  # checked before the bootstrap
    units, unit_groups = scored.units(subject_of, report)
    summary = aggregate(units, unit_groups, min_samples, n_bootstrap, confidence, random_state)
    classes = list(summary.importance.columns)
    differences = (class_differences(units, unit_groups, min_samples).sort_values("p_value")
                   if len(classes) > 1 else None)
    maps = _attention_maps(scored, shown, output_dir)
    write_tsv(output_dir, "genus_scores", scored.scores)
    if subjects is not None:
        write_tsv(output_dir, "subject_scores", units, index_label="subject (group)")
    write_tsv(output_dir, "keystone_genera", summary.genera, index=False)
    write_tsv(output_dir, "importance", summary.importance, index_label="feature-id")
    if differences is not None:
        write_tsv(output_dir, "class_differences", differences)
    top = summary.genera[summary.genera["rank"] <= top_genera]
    render_page(output_dir, "keystone", {
        "title": "MGM keystone genera", "method": method, "units": UNITS[method], "confidence": f"{confidence:.0%}",
        "min_samples": min_samples, "unit": "samples" if subjects is None else "subjects",
        "overview": overview_table(_overview(scored, summary, method, len(units))),
        "top_plot": _top_plot(top, classes, "mean_score", f"mean {method} score ({confidence:.0%} CI)",
                              method != "gradient", output_dir),
        "top_tables": {group: _top_table(rows, confidence) for group, rows in top.groupby("group", sort=False)},
        "heatmap": _heatmap(summary.genera, top, classes, "mean_score",
                            f"mean {method} score (blank: not in the group)", output_dir),
        "differences_plot": None if differences is None else _volcano(differences, classes, output_dir),
        "differences": None if differences is None else html_table(
            differences.dropna(subset=["p_value"]).head(20), "{:.3g}"),
        "maps": maps,
        "has_differences": differences is not None,
    })


def _batch_fit_report(output_dir, corpus, model, column, subject_of, batches, min_samples, top_genera, n_bootstrap,
                      confidence, random_state, device):
    """The page for a model fit with batches: each genus's effect on the decision per group (a classifier's
    classes, a regressor's higher and lower; its contributions, core.keystone_batches), in the same layout; no
    attention maps and no tests on scores."""
    from ..core.keystone_batches import (explain_samples, long_contributions, other_share, sample_parts,
                                         summarise_effects)
    from ..core.keystone_samples import check_rankable
    explained = explain_samples(corpus, model.path, column, batches.to_series(), device, report)
    if column is None:  # the groups the model predicts are known only now; still before the bootstrap
        check_rankable(corpus, explained.groups, subject_of, min_samples, explained.grouping)
    summary = summarise_effects(explained, subject_of, min_samples, n_bootstrap, confidence, random_state, report)
    classes = list(summary.importance.columns)
    parts = sample_parts(explained)
    write_tsv(output_dir, "contributions", long_contributions(explained), index=False)
    write_tsv(output_dir, "sample_scores", parts)
    if subject_of is not None:
        units, _, _ = explained.units(subject_of, lambda message: None)  # each output's (total, clr, mgm)
        totals = [unit_parts[0].stack().rename(name) for name, unit_parts in units.items()]
        write_tsv(output_dir, "subject_contributions", pd.concat(totals, axis=1).rename_axis(
            ["subject (group)", "genus"]))
    write_tsv(output_dir, "keystone_genera", summary.genera, index=False)
    write_tsv(output_dir, "importance", summary.importance, index_label="feature-id")
    top = summary.genera[summary.genera["rank"] <= top_genera]
    gap, share = parts["relative_gap"], other_share(explained)
    regression = explained.task == "regression"
    score_units = ("the prediction's units" if regression else "log-odds" if len(classes) == 2 else
                   "units of each class's logit")
    render_page(output_dir, "keystone", {
        "title": "MGM keystone genera", "method": "gradient", "batch_fit": True,
        "confidence": f"{confidence:.0%}", "min_samples": min_samples,
        "unit": "samples" if subject_of is None else "subjects", "outputs": ", ".join(explained.contributions),
        "two_classes": len(classes) == 2, "classes": classes, "batches_column": batches.name,
        "regression": regression, "kind": "regressor" if regression else "classifier",
        "predict_action": "predict-regression" if regression else "predict-classification",
        "grouping": explained.grouping, "score_units": score_units,
        "median_gap": f"{gap.median():.2%}", "gap_90": f"{gap.quantile(0.9):.2%}",
        "median_abs_gap": f"{parts['gap'].abs().median():.3g}", "other_share": f"{share:.0%}",
        "overview": overview_table(_batch_overview(explained, summary, parts, share, subject_of)),
        "top_plot": _top_plot(top, classes, "effect", f"effect on the decision ({confidence:.0%} CI)", False,
                              output_dir),
        "top_tables": {group: _effect_table(rows, confidence) for group, rows in top.groupby("group", sort=False)},
        # each genus's effect in the column of the group it points to, as importance.tsv holds it (with two groups
        # both get the same effect, so a full matrix would repeat one column)
        "heatmap": _heatmap(summary.genera.assign(effect=summary.genera.effect.where(
                                summary.genera.points_to == summary.genera.group)), top, classes, "effect",
                            f"effect, in the column of the {'group' if regression else 'class'} it points to "
                            f"({score_units})", output_dir, diverging=True),
        "maps": [], "has_differences": False,
    })


def _batch_overview(explained, summary, parts, share, subjects):
    counts = explained.groups.value_counts().reindex(summary.importance.columns).fillna(0).astype(int)
    batches = explained.batches.value_counts().sort_index()
    shares = summary.genera.drop_duplicates("genus").mgm_share.dropna()
    return {"samples explained (every sample of the corpus)": len(explained.batches),
            f"batches ({explained.batches.name})": ", ".join(f"{b} ({n})" for b, n in batches.items()),
            ("samples summarised (a value to split)" if explained.task == "regression" else
             "samples summarised (a class of the model's)"): len(explained.groups),
            **({("samples explained, not summarised: their batch has no value above its median"
                 if explained.task == "regression" else
                 "samples explained, not summarised: their class is not the model's"): ", ".join(
                f"{sample} ({group:g})" if explained.task == "regression" else f"{sample} ({group})"
                for sample, group in explained.unexplained.items())}
               if len(explained.unexplained) else {}),
            "grouped by": explained.grouping,
            "groups": ", ".join(f"{g} ({n})" for g, n in counts.items()),
            "method": "gradient: each genus's contribution to the decision (CLR part exact, MGM part by integrated "
                      "gradients)",
            "decision explained": ", ".join(explained.contributions),
            "genera": len(explained.genera),
            "median completeness gap of the integrated gradients (relative to the MGM part's change)":
                f"{parts.relative_gap.median():.2%}",
            "median share of a sample's score that is no genus's (other)": f"{share:.0%}",
            "median mgm_share over genera": "n/a" if shares.empty else f"{shares.median():.2f}",
            **{f"{group}: genera ranked (pointing to it) / held by fewer than {summary.min_samples} "
               f"{'samples' if subjects is None else 'subjects'} (not ranked)":
               f"{int(summary.genera[summary.genera.group == group]['rank'].notna().sum())} / {int(n)}"
               for group, n in summary.n_excluded.items()}}


def _effect_table(rows, confidence):
    shown = pd.DataFrame({"rank": rows["rank"].astype(int), "genus": rows.genus.map(_short),
                          "effect": rows.effect.map("{:+.3f}".format),
                          f"{confidence:.0%} CI": [f"{low:+.3f} to {high:+.3f}" for low, high in
                                                   zip(rows.ci_low, rows.ci_high)],
                          "CLR part": rows.effect_clr.map("{:+.3f}".format),
                          "MGM part": rows.effect_mgm.map("{:+.3f}".format),
                          "prevalence": rows.prevalence.map("{:.0%}".format),
                          "mgm_share": rows.mgm_share.map("{:.2f}".format)})
    return html_table(shown, index=False)


def _overview(scored, summary, method, n_units):
    counts = scored.groups.value_counts().sort_index()
    return {"samples scored": len(scored.groups),
            "units summarised (samples, or subjects where a subject column is given)": n_units,
            "grouped by": scored.grouping,
            "groups": ", ".join(f"{g} ({n})" for g, n in counts.items()),
            "method": method,
            **({"samples not explained: their class is not the model's": ", ".join(
                f"{sample} ({group})" for sample, group in scored.unexplained.items())}
               if len(scored.unexplained) else {}),
            "genera scored": scored.scores.shape[1],
            **{f"{group}: genera ranked / seen in fewer than {summary.min_samples} samples (not ranked)":
               f"{int((summary.genera.group == group).sum() - n)} / {int(n)}"
               for group, n in summary.n_excluded.items()}}


def _top_table(rows, confidence):
    shown = pd.DataFrame({"rank": rows["rank"].astype(int), "genus": rows.genus.map(_short),
                          "mean score": rows.mean_score.map("{:.3f}".format),
                          f"{confidence:.0%} CI": [f"{low:.3f} to {high:.3f}" for low, high in
                                                   zip(rows.ci_low, rows.ci_high)],
                          "samples": rows.n_samples, "prevalence": rows.prevalence.map("{:.0%}".format)})
    return html_table(shown, index=False)


def _short(genus):
    return genus[3:] if genus.startswith("g__") else genus


def _top_plot(top, classes, value, label, even_share_line, output_dir):
    """Each group's top genera: `value` (a column of the summary) with its confidence interval, labelled `label`;
    a dotted line at 1 (an even share) for the attention scores."""
    figure, axes = subplots(1, len(classes), figsize=(5.5 * len(classes), 0.32 * top.groupby("group").size()
                                                           .max() + 1.8), squeeze=False)
    for ax, group in zip(axes[0], classes):
        rows = top[top.group == group].sort_values("rank", ascending=False)
        ax.barh([_short(g) for g in rows.genus], rows[value], color="#3b75af",
                xerr=[(rows[value] - rows.ci_low).clip(lower=0), (rows.ci_high - rows[value]).clip(lower=0)],
                ecolor="#333", capsize=2)
        ax.set_title(group)
        ax.set_xlabel(label)
        ax.axvline(1 if even_share_line else 0, color="grey", linestyle=":", linewidth=1)
    return save_figure(figure, output_dir, "top_genera")


def _heatmap(genera, top, classes, value, label, output_dir, diverging=False):
    chosen = list(dict.fromkeys(top.sort_values("rank").genus))
    matrix = (genera.pivot(index="genus", columns="group", values=value)
              .reindex(index=chosen, columns=classes)).to_numpy(dtype=float)
    figure, ax = subplots(figsize=(1.6 * len(classes) + 3.5, 0.28 * len(chosen) + 1.5))
    if diverging:  # signed effects: 0 white, the colour scale symmetric
        limit = max(float(np.nanmax(np.abs(matrix))), 1e-12) if np.isfinite(matrix).any() else 1.0
        image = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit)
    else:
        image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(chosen)), [_short(g) for g in chosen])
    figure.colorbar(image, ax=ax, label=label)
    return save_figure(figure, output_dir, "heatmap")


def _volcano(differences, classes, output_dir):
    tested = differences.dropna(subset=["p_value"])
    figure, ax = subplots(figsize=(7, 5))
    significant = tested.q_value < 0.05
    ax.scatter(tested.effect_size[~significant], -np.log10(tested.p_value[~significant]), s=14, color="#999999",
               label="q >= 0.05")
    ax.scatter(tested.effect_size[significant], -np.log10(tested.p_value[significant]), s=18, color="firebrick",
               label="q < 0.05 (Benjamini-Hochberg)")
    for genus, row in tested.head(8).iterrows():
        ax.annotate(_short(genus), (row.effect_size, -np.log10(row.p_value)), fontsize=8, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel(f"AUC: P(score in {classes[1]} > score in {classes[0]})" if len(classes) == 2 else
                  "effect size (epsilon squared)")
    ax.set_ylabel("-log10 p")
    ax.legend(fontsize=8)
    return save_figure(figure, output_dir, "class_differences")


def _listed(ids, limit=5):
    return ", ".join(map(repr, ids[:limit])) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _chosen_samples(scored, sample_ids, corpus_ids):
    from ..core.keystone import KeystoneError
    if not sample_ids:
        return [ids[0] for _, ids in scored.groups.groupby(scored.groups).groups.items()][:DEFAULT_MAPS * 2]
    unknown = [s for s in sample_ids if s not in scored.groups.index]
    if unknown:
        absent = [s for s in unknown if s not in corpus_ids]
        ungrouped = [s for s in unknown if s in corpus_ids]
        reasons = ([f"not in the corpus: {_listed(absent)}"] if absent else []) + (
            [f"in the corpus but without a group (no value in the metadata column): {_listed(ungrouped)}"]
            if ungrouped else [])
        raise KeystoneError(
            f"{len(unknown)} of the {len(sample_ids)} samples of attention_samples have no attention map to show; "
            f"{'; '.join(reasons)}. Give attention_samples metadata whose IDs are samples of the corpus with a "
            "group, or leave it out to show the first sample of each group.")
    return list(sample_ids)


def _attention_maps(scored, samples, output_dir):
    from ..core.keystone import attention_map
    maps = []
    for number, sample in enumerate(samples, start=1):
        ids = scored.token_ids[scored.groups.index.get_loc(sample)]
        frame = attention_map(scored.model.network, ids, scored.model.vocabulary)
        tsv = write_tsv(output_dir, f"attention_map_{number}", frame)
        labels = [_short(t) for t in frame.index]
        size = min(0.3 * len(labels) + 2.5, 16)
        figure, ax = subplots(figsize=(size + 1.5, size))
        image = ax.imshow(frame.to_numpy(), cmap="magma_r", vmin=0)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("attended token"), ax.set_ylabel("attending token")
        ax.set_title(f"{sample} ({scored.groups[sample]})", fontsize=10)
        figure.colorbar(image, ax=ax, label="last-layer attention, mean over heads")
        maps.append({"sample": sample, "group": scored.groups[sample],
                     "plot": save_figure(figure, output_dir, f"attention_map_{number}"),
                     "tsv": tsv})
    return maps

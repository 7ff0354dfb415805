"""evaluate-generated: real and synthetic samples side by side, per label: genus prevalence and mean abundance,
alpha diversity, a Bray-Curtis PCoA of both together, a classifier two-sample test and train-on-synthetic,
test-on-real. The numbers come from core.realism, which a benchmark can call on any generator."""
import math

import matplotlib
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
import numpy as np
import pandas as pd
import qiime2
from sklearn.metrics import roc_curve

from ..core.realism import ALPHA_METRICS, REAL, SYNTHETIC, check_abundances, realism_report
from ..core.reconstruction import genus_relative_abundance
from ._render import html_table, render_page, save_figure, subplots, write_tsvs

COLOURS = {REAL: "#3b75af", SYNTHETIC: "#ef8636"}
PANELS_PER_ROW = 4


def evaluate_generated(output_dir: str, real_table: pd.DataFrame, synthetic_table: pd.DataFrame,
                       real_labels: qiime2.CategoricalMetadataColumn,
                       synthetic_labels: qiime2.CategoricalMetadataColumn, taxonomy: pd.Series = None,
                       n_estimators: int = 200, random_state: int = 0) -> None:
    real, real_note = _genera(REAL, real_table, taxonomy, "give the taxonomy of its features, or a table whose "
                              "feature IDs are taxonomy strings (qiime taxa collapse)")
    synthetic, synthetic_note = _genera(SYNTHETIC, synthetic_table, None, "its feature IDs must be MGM genus "
                                        "tokens (g__Name), as MGM generates them")
    report = realism_report(real, real_labels.to_series(), synthetic, synthetic_labels.to_series(), random_state,
                            n_estimators)
    downloads = write_tsvs(output_dir, realism_summary=report.summary,
                           genus_profiles=report.profiles.table, genus_agreement=report.profiles.agreement,
                           alpha_diversity=report.alpha.samples, alpha_tests=report.alpha.tests,
                           pcoa=report.ordination.coordinates, two_sample_scores=report.two_sample.scores)
    render_page(output_dir, "evaluate_generated", {
        "title": "MGM generated samples: realism", "n_estimators": n_estimators, "headline": report.headline,
        "real_column": real_labels.name, "synthetic_column": synthetic_labels.name,
        "summary": html_table(report.summary.rename_axis(None), "{:.3f}"),
        "notes": [note for note in (real_note, synthetic_note) if note] + report.notes,
        "roc_plot": _roc_plot(report.two_sample, output_dir),
        "prevalence_plot": _profile_plot(report.profiles, "prevalence", 1e-2, output_dir),
        "abundance_plot": _profile_plot(report.profiles, "mean_abundance", 1e-5, output_dir),
        "alpha_plot": _alpha_plot(report.alpha.samples, output_dir),
        "alpha_tests": html_table(report.alpha.tests, "{:.3g}", index=False),
        "pcoa_plot": _pcoa_plot(report.ordination, output_dir),
        "downloads": downloads,
    })


def _genera(source, table, taxonomy, fix):
    """Samples x MGM genera relative abundance, collapsed as the tokenizer collapses, and a note on the samples
    left out for holding no MGM genus."""
    check_abundances(source, table)
    relative = genus_relative_abundance(table, taxonomy)
    if relative.empty:
        raise ValueError(f"No feature of the {source} table names a genus in MGM's vocabulary; {fix}.")
    dropped = len(table) - len(relative)
    return relative, (f"{dropped} {source} samples hold no genus of MGM's vocabulary and are left out."
                      if dropped else None)


def _panels(n):
    """A figure with n panels, PANELS_PER_ROW to a row, and its n axes."""
    columns = min(n, PANELS_PER_ROW)
    figure, axes = subplots(math.ceil(n / columns), columns, figsize=(4 * columns, 4 * math.ceil(n / columns)),
                                squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return figure, axes.flat[:n]


def _profile_plot(profiles, statistic, linear_below, output_dir):
    """Real vs synthetic per genus, a panel per label, on symmetric-log axes (absent genera sit at 0)."""
    groups = list(profiles.table.groupby("label", sort=False))
    correlation = profiles.agreement[f"{statistic.split('_')[-1]}_spearman"]
    figure, axes = _panels(len(groups))
    for ax, (group, rows) in zip(axes, groups):
        x, y = rows[f"{REAL}_{statistic}"], rows[f"{SYNTHETIC}_{statistic}"]
        ax.scatter(x, y, s=10, alpha=0.6, color=COLOURS[SYNTHETIC])
        high = max(x.max(), y.max())
        ax.plot([0, high], [0, high], color="grey", linestyle=":")
        ticks = [0, *10.0 ** np.arange(round(math.log10(linear_below)), 1)]  # decades only: none crowd 0
        for scale, set_ticks in ((ax.set_xscale, ax.set_xticks), (ax.set_yscale, ax.set_yticks)):
            scale("symlog", linthresh=linear_below)
            set_ticks(ticks)
        ax.set_xlim(-linear_below / 2, 1.5 * high), ax.set_ylim(-linear_below / 2, 1.5 * high)
        ax.set_title(f"{group} (Spearman {correlation[group]:.2f})", fontsize=10)
        ax.set_xlabel(f"real {statistic.replace('_', ' ')}"), ax.set_ylabel(f"synthetic {statistic.replace('_', ' ')}")
    return save_figure(figure, output_dir, statistic)


def _alpha_plot(samples, output_dir):
    """Box plots of each alpha metric, real beside synthetic, per label."""
    groups = list(samples.label.unique())
    figure, axes = subplots(1, len(ALPHA_METRICS), figsize=(4 + 1.5 * len(groups) * len(ALPHA_METRICS), 4.5))
    for ax, metric in zip(axes, ALPHA_METRICS):
        for offset, source in ((-0.2, REAL), (0.2, SYNTHETIC)):
            values = [samples[metric][(samples.label == g) & (samples.source == source)] for g in groups]
            boxes = ax.boxplot(values, positions=np.arange(len(groups)) + offset, widths=0.35, patch_artist=True,
                               flierprops={"markersize": 2})
            for box in boxes["boxes"]:
                box.set_facecolor(COLOURS[source])
        ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right")
        ax.set_title(metric.replace("_", " "))
    axes[0].legend(handles=[Patch(color=c, label=s) for s, c in COLOURS.items()])
    return save_figure(figure, output_dir, "alpha_diversity")


def _pcoa_plot(ordination, output_dir):
    """The first two axes, coloured by source (left) and by label with the source as marker (right)."""
    coordinates, explained = ordination.coordinates, ordination.proportion_explained
    figure, (by_source, by_label) = subplots(1, 2, figsize=(13, 5.5))
    for source, rows in coordinates.groupby("source"):
        by_source.scatter(rows.PC1, rows.PC2, s=8, alpha=0.5, color=COLOURS[source], label=source)
    colours = dict(zip(sorted(coordinates.label.unique()), matplotlib.colormaps["tab10"].colors * 10))
    markers = {REAL: "o", SYNTHETIC: "x"}
    for (source, label), rows in coordinates.groupby(["source", "label"]):
        by_label.scatter(rows.PC1, rows.PC2, s=10, alpha=0.5, color=colours[label], marker=markers[source])
    by_source.legend()
    by_label.legend(handles=[Patch(color=c, label=label) for label, c in colours.items()] +
                    [Line2D([], [], color="grey", marker=m, linestyle="", label=s) for s, m in markers.items()],
                    fontsize=8)
    for ax in (by_source, by_label):
        ax.set_xlabel(f"PC1 ({explained.PC1:.1%})"), ax.set_ylabel(f"PC2 ({explained.PC2:.1%})")
    return save_figure(figure, output_dir, "pcoa")


def _roc_plot(two_sample, output_dir):
    """ROC curves of the two-sample test, a curve per label (out-of-fold probabilities of being synthetic)."""
    figure, ax = subplots(figsize=(6, 5.5))
    for group, rows in two_sample.scores.groupby("label", sort=False):
        fpr, tpr, _ = roc_curve(rows.source == SYNTHETIC, rows.p_synthetic)
        ax.plot(fpr, tpr, label=f"{group} (AUC {two_sample.auc.two_sample_auc[group]:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="indistinguishable")
    ax.set_xlabel("false positive rate (real called synthetic)"), ax.set_ylabel("true positive rate")
    ax.legend(fontsize=8)
    return save_figure(figure, output_dir, "two_sample_roc")

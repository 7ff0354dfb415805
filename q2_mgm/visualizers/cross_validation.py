"""evaluate-cross-validation: MGM beside the conventional baselines, fold by fold (or held-out group by group), on
exactly the same samples: per-fold figures, their mean with a 95% interval, paired wins, a dot plot, pooled curves,
the transfer matrix, the genera across held-out groups (with markers), and the samples left out."""
import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, mean_absolute_error, r2_score

from ..core import schemas
from ..core.cross_validation import CrossValidation
from ..core.significance import t_interval
from ._markers import markers_section
from ._render import html_table, overview_table, render_page, save_figure, subplots, write_tsvs
from .evaluate import _roc_auc, _roc_pr_plots


def _probabilities(frame, classes):
    probabilities = frame[[schemas.CV_PROBABILITY_PREFIX + c for c in classes]].astype(float)
    probabilities.columns = classes
    return probabilities


def _fold_scores(result: CrossValidation) -> pd.DataFrame:
    """One row per (fold, method): held-out samples, samples of each class, and the metrics."""
    rows = []
    for (fold, method), frame in result.predictions.groupby(["fold", "method"], sort=False):
        row = {"fold": fold, "method": method, "samples": len(frame)}
        if result.task == "classification":
            truth = frame["truth"].astype(str).reset_index(drop=True)
            row.update({f"n {c}": int((truth == c).sum()) for c in result.classes})
            probabilities = _probabilities(frame, result.classes).reset_index(drop=True)
            row["ROC AUC"] = _roc_auc(truth, probabilities, result.classes)
            called = frame["prediction"].astype(str).reset_index(drop=True)
            row["accuracy"] = float((called == truth).mean())
            with warnings.catch_warnings():  # a fold of one class (a held-out subject or study) whose samples
                # are called as another class, or all as its own: its balanced accuracy is that class's recall, as
                # the page says; scikit-learn's warning (the first, or from 1.4 the second), once per such fold,
                # tells the user nothing to act on
                warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
                warnings.filterwarnings("ignore", "A single label was found in 'y_true' and 'y_pred'", UserWarning)
                row["balanced accuracy"] = balanced_accuracy_score(truth, called)
        else:
            truth, predicted = frame["truth"].astype(float), frame["prediction"].astype(float)
            row.update({"MAE": mean_absolute_error(truth, predicted),
                        "R2": r2_score(truth, predicted) if len(frame) > 1 else np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def _pooled_accuracy(result, method, balanced):
    """Accuracy (or balanced accuracy) of `method`'s called classes over every held-out sample."""
    frame = result.predictions[result.predictions["method"] == method]
    truth, called = frame["truth"].astype(str), frame["prediction"].astype(str)
    return balanced_accuracy_score(truth, called) if balanced else float((truth == called).mean())


def _summary(scores, result, metric, higher_is_better):
    mgm = result.methods[0]
    wide = scores.pivot(index="fold", columns="method", values=metric)
    rows = {}
    for method in result.methods:
        # per-fold figures (NaN folds, e.g. of one class, left out); a ROC AUC's interval clipped to [0, 1]
        bounds = (0.0, 1.0) if metric == "ROC AUC" else (-np.inf, np.inf)
        mean, (low, high) = t_interval(wide[method], bounds=bounds)
        row = {f"mean {metric}": mean, "95% interval": f"{low:.3f} to {high:.3f}" if np.isfinite(low) else "n/a",
               "folds scored": int(wide[method].notna().sum()),
               # the classes called (the most probable): pooled over every held-out sample, not fold by fold
               **({name: _pooled_accuracy(result, method, balanced) for name, balanced in
                   (("accuracy", False), ("balanced accuracy", True))} if result.task == "classification" else {}),
               "seconds fitting and predicting, all folds": result.record["seconds"][method],
               f"{mgm} wins / losses": ""}
        if method != mgm:
            both = wide[[mgm, method]].dropna()
            better = both[mgm] > both[method] if higher_is_better else both[mgm] < both[method]
            worse = both[mgm] < both[method] if higher_is_better else both[mgm] > both[method]
            row[f"{mgm} wins / losses"] = f"{int(better.sum())} / {int(worse.sum())}"
        rows[method] = row
    return pd.DataFrame(rows).T.rename_axis("method")


def _dot_plot(scores, result, metric, output_dir):
    """One panel per baseline: each fold is a point, the baseline's figure across, MGM's up."""
    mgm, baselines = result.methods[0], result.methods[1:]
    wide = scores.pivot(index="fold", columns="method", values=metric)
    figure, axes = subplots(1, len(baselines), figsize=(5 * len(baselines), 4.8), squeeze=False)
    finite = wide.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    low, high = (finite.min(), finite.max()) if len(finite) else (0, 1)
    pad = 0.05 * (high - low or 1)
    for ax, baseline in zip(axes[0], baselines):
        ax.scatter(wide[baseline], wide[mgm], color="tab:blue")
        for fold, row in wide.iterrows():
            if np.isfinite(row[baseline]) and np.isfinite(row[mgm]):
                ax.annotate(str(fold), (row[baseline], row[mgm]), fontsize=7, alpha=0.7,
                            xytext=(3, 3), textcoords="offset points")
        ax.plot([low - pad, high + pad], [low - pad, high + pad], color="grey", linestyle=":")
        ax.set_xlim(low - pad, high + pad), ax.set_ylim(low - pad, high + pad)
        ax.set_xlabel(f"{baseline}: {metric}"), ax.set_ylabel(f"{mgm}: {metric}")
    return save_figure(figure, output_dir, "dot_plot")


def _transfer_plot(transfer, result, metric, output_dir):
    """One heatmap per method on one colour scale, each cell's figure written in it."""
    methods = [m for m in result.methods if m in set(transfer["method"])]
    scores = transfer["score"].to_numpy(dtype=float)
    low, high = np.nanmin(scores), np.nanmax(scores)
    figure, axes = subplots(1, len(methods), figsize=(4.5 * len(methods), 4.2), squeeze=False)
    for ax, method in zip(axes[0], methods):
        matrix = transfer[transfer["method"] == method].pivot(index="trained_on", columns="tested_on",
                                                               values="score")
        image = ax.imshow(matrix.to_numpy(dtype=float), cmap="viridis", vmin=low, vmax=high)
        for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < (low + high) / 2 else "black")
        ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize=7)
        ax.set_title(method, fontsize=9), ax.set_xlabel("tested on"), ax.set_ylabel("trained on")
    figure.colorbar(image, ax=axes[0][-1], fraction=0.046, label=metric)  # one scale for every panel
    return save_figure(figure, output_dir, "transfer_matrix")


def _pooled_plot(result, output_dir):
    predictions = result.predictions
    if result.task == "classification":
        methods = {m: _probabilities(f, result.classes).reset_index(drop=True)
                   for m, f in predictions.groupby("method", sort=False)}
        truth = predictions[predictions["method"] == result.methods[0]]["truth"].astype(str).reset_index(drop=True)
        return _roc_pr_plots(truth, methods, result.classes, output_dir)
    figure, ax = subplots(figsize=(6, 6))
    for method, frame in predictions.groupby("method", sort=False):
        ax.scatter(frame["truth"].astype(float), frame["prediction"].astype(float), alpha=0.5, s=12, label=method)
    values = predictions["truth"].astype(float)
    ax.plot([values.min(), values.max()], [values.min(), values.max()], color="grey", linestyle=":")
    ax.set_xlabel(f"true {result.record['label_column']}"), ax.set_ylabel("out-of-fold prediction"), ax.legend()
    return save_figure(figure, output_dir, "scatter")


def evaluate_cross_validation(output_dir: str, cross_validation: CrossValidation) -> None:
    result, record = cross_validation, cross_validation.record
    metric, higher = ("ROC AUC", True) if result.task == "classification" else ("MAE", False)
    scores = _fold_scores(result)
    summary = _summary(scores, result, metric, higher)
    left_out = pd.DataFrame(record["left_out"], columns=["sample_id", "reason"]).reset_index(drop=True)
    wide = scores.pivot(index="fold", columns="method", values=metric)[result.methods]
    counts = scores[scores["method"] == result.methods[0]].set_index("fold").drop(
        columns=["method", "ROC AUC", "accuracy", "balanced accuracy", "MAE", "R2"], errors="ignore")
    per_fold = counts.join(wide).loc[wide.index]
    transfer = result.transfer
    downloads = write_tsvs(output_dir, summary=summary, per_fold=scores, left_out_samples=left_out,
                           **({"transfer_matrix": transfer.rename(columns={"score": metric})} if len(transfer)
                              else {}))
    downloads.append("out_of_fold_predictions.tsv")
    result.predictions.to_csv(f"{output_dir}/out_of_fold_predictions.tsv", sep="\t", index=False)
    markers, marker_files = markers_section(result, output_dir)
    downloads += marker_files
    strategy = record["cv_strategy"]
    overview = {"label column": record["label_column"], "task": result.task,
                "strategy": f"{strategy}, {record['cv']} folds"
                            + (f", groups from {record['groups_column']!r}" if record["groups_column"] else ""),
                "batches corrected within": record["batches_column"] or "none given",
                "samples predicted": int((result.predictions["method"] == result.methods[0]).sum()),
                "samples left out": len(left_out), "seed": record["random_state"],
                "seconds for the features (one encoder pass, every fold)": f"{record['features_seconds']:.1f}"}
    render_page(output_dir, "cross_validation", {
        "title": "MGM across folds and studies", "overview": overview_table(overview),
        "mgm": result.methods[0], "metric": metric, "higher": higher,
        "methods": [(m, record["descriptions"][m], m in record["uses_mgm"]) for m in result.methods],
        "summary": html_table(summary, "{:.3f}"), "per_fold": html_table(per_fold, "{:.3f}"),
        "dot_plot": _dot_plot(scores, result, metric, output_dir) if len(result.methods) > 1 else None,
        "pooled_plot": _pooled_plot(result, output_dir),
        "transfer_plot": _transfer_plot(transfer, result, metric, output_dir) if len(transfer) else None,
        "unscored": int(wide[result.methods[0]].isna().sum()),
        "transfer_means": (html_table(transfer.groupby("method", sort=False)["score"].mean().to_frame(
            f"mean {metric} off the diagonal"), "{:.3f}") if len(transfer) else None),
        "left_out": html_table(left_out, index=False) if len(left_out) else None, "n_left_out": len(left_out),
        "downloads": downloads, "classification": result.task == "classification",
        "no_batches": not record["batches_column"],
        "groups_of_one_class": record.get("groups_of_one_class", False),
        "label_column": record.get("label_column"), "groups_column": record.get("groups_column"),
        "markers": markers,
    })

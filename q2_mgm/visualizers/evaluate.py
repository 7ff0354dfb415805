"""evaluate-classification and evaluate-regression: held-out accuracy of an MGM model beside a RandomForest
trained and tested on exactly the same samples, and the samples left out, with why."""
import biom
from matplotlib.ticker import MaxNLocator
import numpy as np
import pandas as pd
import qiime2
from sklearn.metrics import (auc, balanced_accuracy_score, classification_report, confusion_matrix, mean_absolute_error,
                             precision_recall_curve, r2_score, roc_auc_score, roc_curve)

from ..core.baselines import BASELINE_TREES, random_forest_baseline
from ..core.samples import samples_left_out
from ..core.tokenizer import Corpus
from ._render import html_table, render_page, save_figure, subplots, write_tsvs


def _truth_for(column, sample_ids):
    truth = column.to_series().reindex(sample_ids)
    if truth.isna().any():
        missing = truth.index[truth.isna()]
        raise ValueError(f"{len(missing)} predicted samples have no value in {column.name!r} (for example "
                         f"{', '.join(map(str, missing[:3]))}); the evaluation needs each one's true value. Give a "
                         "truth column that holds one for every predicted sample, or predict only samples with a "
                         "known value (filter the table first: qiime feature-table filter-samples --p-where).")
    return truth


class Samples:
    """Which samples the evaluation's methods trained on, and those of the inputs left out, with why.

    The training samples are the labelled samples outside the test set of the training corpus, where given (MGM's
    own: the baseline is fit on exactly these), else of the table. The samples left out are those of the table and
    the corpus (kept or dropped by tokenization) in neither set."""

    def __init__(self, truth: qiime2.MetadataColumn, test_ids: pd.Index, table: biom.Table = None,
                 training_corpus: Corpus = None):
        labelled = truth.to_series().dropna()
        table_ids = pd.Index([] if table is None else table.ids(), dtype=object)
        pool = table_ids if training_corpus is None else training_corpus.samples.index
        self.training = pool[pool.isin(labelled.index) & ~pool.isin(test_ids)]
        corpus_ids = pd.Index([] if training_corpus is None else training_corpus.samples.index, dtype=object)
        self.left_out = samples_left_out(
            table_ids.append(corpus_ids), test_ids.append(self.training), [(truth.name, truth.to_series())],
            None if training_corpus is None else training_corpus.dropped_samples,
            otherwise="not in the training corpus (no value in another metadata column the training read, such "
                      "as groups)")
        self.from_corpus = training_corpus is not None


def _forest(table, truth, kind, test_ids, task, n_estimators, random_state, training_ids):
    """The RandomForest baseline, trained on training_ids (labelled, outside test_ids) and tested on test_ids."""
    abundance = table.to_dataframe(dense=True).T
    return random_forest_baseline(abundance, truth.to_series().reindex(training_ids).astype(kind), test_ids, task,
                                  n_estimators, random_state)


def _evaluation_page(output_dir, title, n_estimators, summary, history, tables, samples, baseline, **plots):
    """The page and its downloads: each table as NAME.tsv, the samples left out, and the training history, if
    any."""
    left_out = samples.left_out
    tables["samples_left_out"] = left_out
    if history is not None:
        tables["training_history"] = history
    downloads = write_tsvs(output_dir, **tables)
    render_page(output_dir, "evaluate", {
        "title": title, "n_estimators": n_estimators, "summary": html_table(summary, "{:.3f}"),
        "baseline_training": len(samples.training) if baseline else None, "from_corpus": samples.from_corpus,
        "left_out": html_table(left_out, index=False) if len(left_out) else None,
        "left_out_counts": left_out["reason"].value_counts(sort=False).to_dict(),
        **plots, "history_plot": _history_plot(history, output_dir), "downloads": downloads,
        # one pass and no epochs (the exactly fit head of the default recipe): its scores as a table, not a plot
        "history_table": html_table(history, "{:.4f}") if history is not None and len(history) == 1 else None,
    })


def _history_plot(history, output_dir):
    """Loss and validation metrics per epoch; None where there are fewer than two epochs to draw a curve through."""
    if history is None or len(history) < 2:
        return None
    figure, axes = subplots(1, 2, figsize=(11, 4))
    epochs = history.index.astype(int)
    for column in ("train_loss", "validation_loss"):
        if column in history:
            axes[0].plot(epochs, history[column], marker="o", label=column.replace("_", " "))
    axes[0].set_xlabel("epoch"), axes[0].set_ylabel("loss"), axes[0].legend()
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for column in history.columns.difference(["train_loss", "validation_loss"]):
        axes[1].plot(epochs, history[column], marker="o", label=column.replace("_", " "))
    axes[1].set_xlabel("epoch"), axes[1].set_ylabel("validation metric"), axes[1].legend()
    return save_figure(figure, output_dir, "training_curves")


def _binary_scores(truth, probabilities, positive):
    return (truth.astype(str) == positive).astype(int).to_numpy(), probabilities[positive].to_numpy()


def _roc_pr_plots(truth, methods, classes, output_dir):
    """ROC and precision-recall for each method; one-vs-rest per class beyond two classes. A class without test
    samples has no curve."""
    positives = [c for c in (classes[1:] if len(classes) == 2 else classes) if (truth == c).any()]
    figure, (roc_ax, pr_ax) = subplots(1, 2, figsize=(12, 5))
    for name, probabilities in methods.items():
        for positive in positives:
            y, score = _binary_scores(truth, probabilities, positive)
            fpr, tpr, _ = roc_curve(y, score)
            precision, recall, _ = precision_recall_curve(y, score)
            label = name if len(positives) == 1 else f"{name}: {positive}"
            roc_ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
            pr_ax.plot(recall, precision, label=f"{label} (AUC {auc(recall, precision):.3f})")
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    roc_ax.set_xlabel("false positive rate"), roc_ax.set_ylabel("true positive rate")
    roc_ax.set_title(f"ROC (positive class: {positives[0]})" if len(classes) == 2 and positives
                     else "ROC, one vs rest")
    pr_ax.set_xlabel("recall"), pr_ax.set_ylabel("precision"), pr_ax.set_title("precision-recall")
    roc_ax.legend(fontsize=8), pr_ax.legend(fontsize=8)
    return save_figure(figure, output_dir, "roc_pr")


def _confusion_plot(matrix, output_dir):
    figure, ax = subplots(figsize=(1.2 * len(matrix) + 3, 1.0 * len(matrix) + 2.5))
    ax.imshow(matrix.to_numpy(), cmap="Blues")
    ax.set_xticks(range(len(matrix)), matrix.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(matrix)), matrix.index)
    dark = matrix.to_numpy().max() / 2
    for (i, j), value in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > dark else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    return save_figure(figure, output_dir, "confusion_matrix")


def _roc_auc(truth, probabilities, classes):
    """ROC AUC (binary, or one-vs-rest macro over the classes); NaN where fewer than two classes have test samples,
    and over the classes that have them where some have none."""
    present = [c for c in classes if (truth == c).any()]
    if len(present) < 2:
        return float("nan")
    if len(classes) == 2:
        return roc_auc_score(*_binary_scores(truth, probabilities, classes[1]))
    if len(present) < len(classes):
        return float(np.mean([roc_auc_score(*_binary_scores(truth, probabilities, c)) for c in present]))
    return roc_auc_score(truth.astype(str), probabilities[classes].to_numpy(), multi_class="ovr", labels=classes)


def _hard_predictions(predictions, probabilities, classes):
    """MGM's called classes: predict-classification's, checked against the probabilities' samples and classes;
    without them, the most probable class."""
    if predictions is None:
        return pd.Series(np.asarray(classes)[probabilities.to_numpy().argmax(1)], index=probabilities.index)
    predictions = predictions.astype(str)
    if set(predictions.index) != set(probabilities.index):
        raise ValueError(f"predictions and probabilities hold different samples ({len(predictions)} and "
                         f"{len(probabilities)}); pass both outputs of the same predict-classification run.")
    unknown = sorted(set(predictions) - set(classes))
    if unknown:
        raise ValueError(f"predictions name classes the probabilities do not ({', '.join(unknown[:5])}); pass both "
                         "outputs of the same predict-classification run.")
    return predictions.reindex(probabilities.index)


def evaluate_classification(output_dir: str, probabilities: pd.DataFrame, truth: qiime2.CategoricalMetadataColumn,
                            predictions: pd.Series = None, history: pd.DataFrame = None, table: biom.Table = None,
                            training_corpus: Corpus = None, n_estimators: int = BASELINE_TREES,
                            random_state: int = 0) -> None:
    """MGM's hard predictions are `predictions` (the model's decision rule) where given, else the most probable
    class; the RandomForest baseline's are its most probable class, as q2-sample-classifier calls them."""
    classes = [str(c) for c in probabilities.columns]
    probabilities.columns = classes
    called = {"MGM": _hard_predictions(predictions, probabilities, classes)}
    predictions_given = predictions is not None
    labels = _truth_for(truth, probabilities.index).astype(str)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"{truth.name!r} holds classes the model does not know ({', '.join(unknown[:5])}); the "
                         f"model predicts {', '.join(classes)}. Evaluate with the column the model was trained on.")
    present = [c for c in classes if (labels == c).any()]  # per-class figures only where a class has test samples
    absent = [c for c in classes if c not in present]
    methods = {"MGM": probabilities}
    samples = Samples(truth, probabilities.index, table, training_corpus)
    if table is not None:
        forest = _forest(table, truth, str, probabilities.index, "classification", n_estimators, random_state,
                         samples.training)
        methods["RandomForest"] = forest.reindex(columns=classes, fill_value=0.0)
    predictions = pd.DataFrame({"truth": labels})
    metrics = []
    for name, probs in methods.items():
        predicted = called.get(name, pd.Series(np.asarray(classes)[probs.to_numpy().argmax(1)], index=probs.index))
        predictions[f"{name}_prediction"] = predicted
        for c in classes:
            predictions[f"{name}_probability_{c}"] = probs[c]
        report = pd.DataFrame(classification_report(labels, predicted, labels=present, output_dict=True,
                                                    zero_division=0)).T
        report = report.drop(index="accuracy", errors="ignore")  # one number, not a class: it is in the summary
        report.insert(0, "method", name)
        metrics.append(report)
    per_class = pd.concat(metrics).rename_axis("class")
    summary = pd.DataFrame({name: {"ROC AUC": _roc_auc(labels, probs, classes),
                                   "accuracy": float((predictions[f"{name}_prediction"] == labels).mean()),
                                   "balanced accuracy": balanced_accuracy_score(labels,
                                                                                predictions[f"{name}_prediction"]),
                                   "test samples": len(labels)} for name, probs in methods.items()}).T
    summary = summary.astype({"test samples": int})
    confusion = pd.DataFrame(confusion_matrix(labels, predictions["MGM_prediction"], labels=classes),
                             index=pd.Index(classes, name="true class (rows) / predicted (columns)"), columns=classes)
    _evaluation_page(output_dir, "MGM classifier evaluation", n_estimators, summary, history,
                     {"summary": summary, "predictions": predictions, "per_class_metrics": per_class,
                      "confusion_matrix": confusion}, samples, table is not None,
                     curves_plot=_roc_pr_plots(labels, methods, classes, output_dir),
                     confusion_plot=_confusion_plot(confusion, output_dir), per_class=html_table(per_class, "{:.3f}"),
                     absent_classes=absent, argmax_predictions=not predictions_given)


def evaluate_regression(output_dir: str, predictions: pd.Series, truth: qiime2.NumericMetadataColumn,
                        history: pd.DataFrame = None, table: biom.Table = None, training_corpus: Corpus = None,
                        n_estimators: int = BASELINE_TREES, random_state: int = 0) -> None:
    values = _truth_for(truth, predictions.index).astype(float)
    methods = {"MGM": predictions.astype(float)}
    samples = Samples(truth, predictions.index, table, training_corpus)
    if table is not None:
        methods["RandomForest"] = _forest(table, truth, float, predictions.index, "regression", n_estimators,
                                          random_state, samples.training)
    summary = pd.DataFrame({name: {"MAE": mean_absolute_error(values, p), "R2": r2_score(values, p),
                                   "test samples": len(values)} for name, p in methods.items()}).T
    summary = summary.astype({"test samples": int})
    table_out = pd.DataFrame({"truth": values, **{f"{n}_prediction": p for n, p in methods.items()}})
    figure, ax = subplots(figsize=(6, 6))
    for name, p in methods.items():
        ax.scatter(values, p, alpha=0.6, label=f"{name} (MAE {summary.loc[name, 'MAE']:.3g}, "
                                             f"R² {summary.loc[name, 'R2']:.3f})")
    low, high = float(values.min()), float(values.max())
    ax.plot([low, high], [low, high], color="grey", linestyle=":")
    ax.set_xlabel(f"true {truth.name}"), ax.set_ylabel(f"predicted {truth.name}"), ax.legend()
    _evaluation_page(output_dir, "MGM regressor evaluation", n_estimators, summary, history,
                     {"summary": summary, "predictions": table_out}, samples, table is not None,
                     curves_plot=save_figure(figure, output_dir, "scatter"), confusion_plot=None, per_class=None)

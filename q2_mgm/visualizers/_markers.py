"""evaluate-cross-validation's section "Genera across held-out groups": the MGM recipe's genera ranked by how
consistently a higher abundance points one way over the held-out groups (core.markers.marker_table), a heatmap of
each genus's effect in each group, the field's meta-analysis beside them (core.meta_analysis) and how far the two
agree (core.markers.agreement); markers.tsv, markers-<baseline>.tsv and meta_analysis.tsv to download."""
import math

import numpy as np
import pandas as pd

from ..core.markers import (META_PREFIX, MIN_GROUPS_FOR_INTERVAL, agreement, effect_targets, importance_method,
                            marker_table)
from ._render import html_table, save_figure, subplots, write_tsv

TOP_TABLE = 20  # genera in the page's table (markers.tsv holds them all)
TOP_HEATMAP = 25  # genera in the heatmap
MAX_CELL_TEXT = 24  # held-out groups above which the heatmap's cells hold no figures (too narrow to read)
NOT_RUN = "not run: "


def markers_section(result, output_dir: str):
    """(the template's `markers` context, the files written to download). Without markers (result.effects None):
    {"computed": False} and no files."""
    if result.effects is None:
        return {"computed": False}, []
    record = result.record["markers"]
    explained = [m for m in result.methods if m in set(result.effects["method"])]
    # the MGM recipe's markers; with --p-no-mgm-markers the CLR baseline's, as the markers output holds
    method = importance_method(result) if explained else result.methods[0]
    downloads = []
    context = {"computed": True, "method": method, "strategy": record.get("strategy"),
               "across_groups": record.get("strategy") == "leave-one-group-out",
               "groups_column": result.record.get("groups_column"),
               "batches_column": result.record.get("batches_column"),
               "task": result.task, "classes": result.classes, "label_column": result.record.get("label_column"),
               "steps": record.get("integration_steps"), "top": TOP_TABLE,
               "gap": record.get("median_relative_gap", {}).get(method),
               "uses_mgm": method in result.record.get("uses_mgm", []),
               "forest": next((m for m in explained if m == "random-forest"), None),
               "baselines": [m for m in explained if m != method], "explained": method in explained,
               "mgm_skipped": not record.get("mgm_markers", True), "recipe": result.methods[0],
               "stands_in": method != result.methods[0],
               "explain_seconds": record.get("explain_seconds", {}).get(method)}
    markers = None
    if context["explained"]:
        markers, counts = marker_table(result, method)
        downloads.append(write_tsv(output_dir, "markers", markers, index=False))
        context.update(counts=counts, min_prevalence=record["min_prevalence"],
                       table=_table(markers, _unit(result)) if len(markers) else None,
                       heatmap=_heatmap(result, markers, output_dir, method) if len(markers) else None,
                       heatmap_genera=min(TOP_HEATMAP, len(markers)), min_groups=MIN_GROUPS_FOR_INTERVAL)
    for baseline in context["baselines"]:
        downloads.append(write_tsv(output_dir, f"markers-{baseline}", marker_table(result, baseline)[0],
                                   index=False))
    context["meta"] = _meta_context(result, record.get("meta_analysis"), markers)
    if result.meta is not None:
        downloads.append(write_tsv(output_dir, "meta_analysis", result.meta, index_label="genus"))
    return context, downloads


def _decimals(values) -> int:
    """Decimals that show two significant figures of the largest |value|."""
    values = np.abs(np.asarray(values, dtype=float))
    largest = np.nanmax(values) if np.isfinite(values).any() else 0.0
    return 2 if largest == 0 else max(0, 1 - math.floor(math.log10(largest)))


def _interval(mean, low, high, decimals, unit):
    text = f"{mean:.{decimals}f}"
    return text + (f" [{low:.{decimals}f}, {high:.{decimals}f}]" if np.isfinite(low) else
                   f" (none below {MIN_GROUPS_FOR_INTERVAL} {unit}s)")


def _unit(result) -> str:
    """What a fold holds out: a group (leave-one-group-out) or a fold."""
    return "group" if result.record["markers"].get("strategy") == "leave-one-group-out" else "fold"


def _table(markers: pd.DataFrame, unit: str) -> str:
    """The top TOP_TABLE genera, their columns readable, the meta-analysis' beside them (where it ran)."""
    top = markers.head(TOP_TABLE)
    decimals = _decimals(top["mean_effect"])
    rows = pd.DataFrame({
        "rank": top["rank"], "genus": top["genus"],
        "a higher abundance points to": top["points_to"],
        f"{unit}s agreeing": [f"{a} of {g}" for a, g in zip(top["groups_agreeing"], top["groups"])],
        f"median position in its {unit}s": top["median_position"].map("{:g}".format),
        f"mean effect [95% interval over {unit}s]": [_interval(*v, decimals, unit) for v in
                                                   zip(top["mean_effect"], top["ci_low"], top["ci_high"])],
        "MGM part's share": top["mgm_share"].map(lambda v: f"{v:.0%}" if np.isfinite(v) else "n/a"),
    })
    g = META_PREFIX + "hedges_g"
    if g in top:
        rows["meta-analysis: Hedges' g [95% CI]"] = [
            "n/a" if not np.isfinite(v) else f"{v:.2f} [{low:.2f}, {high:.2f}]"
            for v, low, high in zip(top[g], top[META_PREFIX + "ci_low"], top[META_PREFIX + "ci_high"])]
        rows["q-value"] = top[META_PREFIX + "q_value"].map(lambda v: f"{v:.2g}" if np.isfinite(v) else "n/a")
        rows["I²"] = top[META_PREFIX + "i2"].map(lambda v: f"{v:.0%}" if np.isfinite(v) else "n/a")
        rows["higher in (meta-analysis)"] = top[META_PREFIX + "direction"].fillna("n/a")
    return html_table(rows, index=False)


def _signed(result, markers, genera, method):
    """genera x held-out groups (in fold order): `method`'s effect of each genus in each group where the group's
    samples hold it, toward the direction the colour bar names (the second class; higher; or each genus's
    points_to with more than two classes); NaN where the genus is absent from the group or its CLR does not vary."""
    effects = result.effects[result.effects["method"] == method]
    folds = list(pd.unique(effects["fold"]))
    effects = effects[effects["present"] > 0]
    targets = effect_targets(result.task, result.classes)
    rows = {}
    points_to = markers.set_index("genus")["points_to"]
    for genus in genera:
        target, sign = targets[0], 1.0
        if len(targets) > 1:  # more than two classes: toward the genus's own class ("not X": away from X)
            direction = points_to[genus]
            target, sign = (direction, 1.0) if direction in targets else (direction[len("not "):], -1.0)
        rows[genus] = sign * effects[(effects["genus"] == genus) & (effects["points_to"] == target)].set_index(
            "fold")["effect"].reindex(folds)
    return pd.DataFrame(rows).T.reindex(columns=folds)


def _heatmap(result, markers, output_dir, method) -> str:
    """The top TOP_HEATMAP genera (rank order, top row first) by held-out group, on one symmetric diverging scale,
    each cell's figure written in it."""
    top = markers.head(TOP_HEATMAP)
    matrix = _signed(result, top, list(top["genus"]), method)
    values = matrix.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if len(finite) and np.abs(finite).max() > 0 else 1.0
    decimals = _decimals(finite) if len(finite) else 2
    several = result.task == "classification" and len(result.classes) > 2
    labels = [f"{g} ({p})" if several else g for g, p in zip(top["genus"], top["points_to"])]
    n_rows, n_columns = values.shape
    figure, ax = subplots(figsize=(3.5 + max(0.75 * n_columns, 2.5), 1.6 + 0.3 * n_rows))
    from matplotlib import colormaps
    cmap = colormaps["RdBu_r"].with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
    if n_columns <= MAX_CELL_TEXT:
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.{decimals}f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(value) > 0.6 * bound else "black")
    ax.set_xticks(range(n_columns), [str(c) for c in matrix.columns], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(n_rows), labels, fontsize=7)
    ax.set_xlabel(f"held-out {_unit(result)}")
    figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label=_scale_label(result))
    return save_figure(figure, output_dir, "markers_heatmap")


def _scale_label(result) -> str:
    per = "per SD of the genus's CLR"
    if result.task == "regression":
        return f"effect toward higher {result.record.get('label_column') or 'values'} (its units {per})"
    if len(result.classes) == 2:
        return f"effect toward {result.classes[1]} (log-odds {per})"
    return f"effect toward the genus's class (in brackets; its logit {per})"


def _meta_context(result, meta_record, markers):
    """What the page says of the meta-analysis: why it was not run, or over what it ran, its notes, and the
    agreement with the ranking (core.markers.agreement) with the genera where the two disagree."""
    if meta_record is None:
        return None
    if isinstance(meta_record, str):
        return {"ran": False, "why": meta_record[len(NOT_RUN):] if meta_record.startswith(NOT_RUN) else meta_record}
    context = {"ran": True, "over": meta_record.get("over"), "notes": meta_record.get("notes", []),
               "batches_compared": len(meta_record.get("batches_compared", [])),
               "genera_compared": meta_record.get("genera_compared"), "classes": meta_record.get("classes"),
               "agreement": None}
    found = agreement(markers, result.classes, TOP_TABLE) if markers is not None else None
    if found is not None:
        disagree = found["disagree"].rename(columns={
            "points_to": "a higher abundance points to (models)", META_PREFIX + "direction": "higher in "
            "(meta-analysis)", META_PREFIX + "hedges_g": "Hedges' g", META_PREFIX + "q_value": "q-value",
            "rank": "rank by the models"})
        context["agreement"] = {
            "spearman": found["spearman"], "genera": found["genera"], "top": found["top"], "overlap": found["overlap"],
            "disagree": html_table(disagree, "{:.3g}", index=False) if len(disagree) else None}
    return context


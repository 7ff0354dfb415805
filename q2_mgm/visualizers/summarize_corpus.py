"""How well the MGM vocabulary covers a table: coverage, dropped genera and samples, sentence lengths."""
import numpy as np

from ..core.taxonomy import NESTED_ABOVE, NESTED_BELOW, NOT_READ, REPORT_STATUS, features_with_written_genera
from ..core.tokenizer import Corpus, FEATURE_STATUS
from ._render import html_table, overview_table, render_page, save_figure, subplots, write_tsv

TOP_DROPPED = 25


def summarize_corpus(output_dir: str, corpus: Corpus) -> None:
    samples, features = corpus.samples, corpus.features
    write_tsv(output_dir, "samples", samples, index_label="sample-id")
    write_tsv(output_dir, "features", features, index_label="feature-id")
    write_tsv(output_dir, "dropped_samples", corpus.dropped_samples, index_label="sample-id")
    dropped_genera = _dropped_genera(features)
    write_tsv(output_dir, "dropped_genera", dropped_genera)
    render_page(output_dir, "summarize_corpus", {
        "title": "MGM corpus summary",
        "overview": overview_table(_overview(corpus)),
        "coverage_plot": _coverage_plot(samples, output_dir),
        "length_plot": _length_plot(samples, corpus.max_length, output_dir),
        "dropped_plot": _dropped_plot(dropped_genera, output_dir) if len(dropped_genera) else None,
        "dropped_genera": html_table(dropped_genera.head(TOP_DROPPED).reset_index(), "{:.4f}", index=False),
        "dropped_samples": html_table(corpus.dropped_samples) if len(corpus.dropped_samples) else None,
        "low_coverage": bool(samples.vocabulary_coverage.median() < 0.5),
    })


def _overview(corpus):
    samples, features = corpus.samples, corpus.features
    counts = features.status.value_counts().reindex(REPORT_STATUS, fill_value=0)
    counts = counts[counts.index.isin(FEATURE_STATUS) | (counts > 0)]  # the other statuses where they occur
    return {
        "samples tokenized": len(samples),
        "samples dropped": len(corpus.dropped_samples),
        "median vocabulary coverage (share of a sample's abundance the model sees)":
            f"{samples.vocabulary_coverage.median():.1%}",
        "median share without a genus rank": f"{samples.no_genus_share.median():.1%}",
        "median share of genera outside the vocabulary": f"{samples.out_of_vocabulary_share.median():.1%}",
        "median sentence length (tokens)": f"{samples.n_tokens.median():.0f}",
        f"samples truncated to max_length = {corpus.max_length}": int(samples.truncated.sum()),
        "harmonize_names": "on" if corpus.harmonize_names else "off (upstream parity)",
        **{f"features: {status}": int(n) for status, n in counts.items()},
    }


def _dropped_genera(features):
    # nested rows lose nothing: a genus row or the sample's total holds their abundance
    dropped = features_with_written_genera(
        features[~features.status.isin(FEATURE_STATUS[:2] + (NESTED_BELOW, NESTED_ABOVE))]).copy()
    # a genus no token was read for: "(no genus)" only where the input has no genus rank, else "(not read)"
    unread = np.where(dropped.status == FEATURE_STATUS[2], "(no genus) ", "(not read) ") + dropped.taxonomy
    dropped["name"] = dropped.genus.where(dropped.genus != "", unread)
    return (dropped.groupby(["name", "status"])
            .agg(genus_as_written=("genus_as_written", lambda names: ", ".join(sorted(set(names) - {""}))),
                 n_features=("taxonomy", "size"), n_samples=("n_samples", "max"),
                 mean_relative_abundance=("mean_relative_abundance", "sum"))
            .sort_values("mean_relative_abundance", ascending=False)
            .reset_index().set_index("name"))


def _coverage_plot(samples, output_dir):
    figure, ax = subplots(figsize=(7, 4))
    ax.hist(samples.vocabulary_coverage, bins=40, range=(0, 1), color="#3b75af")
    ax.axvline(samples.vocabulary_coverage.median(), color="black", linestyle="--", label="median")
    ax.set_xlabel("share of the sample's abundance in MGM's vocabulary")
    ax.set_ylabel("samples")
    ax.legend()
    return save_figure(figure, output_dir, "coverage")


def _length_plot(samples, max_length, output_dir):
    figure, ax = subplots(figsize=(7, 4))
    lengths = samples.length_before_truncation
    ax.hist(lengths, bins=min(40, max(lengths.max() - lengths.min() + 1, 1)), color="#519e3e")
    if max_length <= 1.5 * lengths.max():  # a far-away limit line would squash the histogram
        ax.axvline(max_length, color="firebrick", linestyle="--", label=f"max_length = {max_length}")
        ax.legend()
    else:
        ax.set_title(f"every sentence fits max_length = {max_length}", fontsize=10)
    ax.set_xlabel("sentence length before truncation (tokens, <bos> and <eos> included)")
    ax.set_ylabel("samples")
    return save_figure(figure, output_dir, "lengths")


def _dropped_plot(dropped_genera, output_dir):
    top = dropped_genera.head(TOP_DROPPED).iloc[::-1]
    colours = top.status.map({FEATURE_STATUS[2]: "#999999", FEATURE_STATUS[3]: "#ef8636", NOT_READ: "#3b75af"})
    figure, ax = subplots(figsize=(8, 0.3 * len(top) + 1.5))
    ax.barh([name[:60] for name in top.index], top.mean_relative_abundance, color=colours)
    ax.set_xlabel("mean relative abundance lost (grey: no genus rank; orange: genus not in vocabulary;\n"
                  "blue: a convention read with harmonize_names)")
    return save_figure(figure, output_dir, "dropped")

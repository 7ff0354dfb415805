"""Shared figure handling: every plot is saved as PNG (shown) and PDF (downloadable)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(figure, output_dir, stem):
    figure.tight_layout()
    for extension in ("png", "pdf"):
        figure.savefig(f"{output_dir}/{stem}.{extension}", dpi=110)
    plt.close(figure)
    return f"{stem}.png"

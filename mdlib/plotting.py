"""Figure style shared by the notebooks (a leaf module)."""

from __future__ import annotations


def setup(context: str = "notebook") -> None:
    """Seaborn's whitegrid style, PNG-only inline figures, a colour-blind palette."""
    import matplotlib
    import seaborn as sns

    sns.set_theme(context=context, style="whitegrid", palette="colorblind")
    matplotlib.rcParams["figure.dpi"] = 90
    matplotlib.rcParams["savefig.dpi"] = 110
    try:  # inline PNG only: nbval skips PNG, SVG/PDF would be compared and bloat files
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:  # not in IPython
        pass


METHOD_ORDER = ["scratch", "zero_shot", "pretrain_ft", "maml", "fomaml", "reptile", "metasgd"]

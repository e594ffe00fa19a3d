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

#: One colour per method in every notebook's figures (seaborn's colour-blind palette, by
#: index, so that the colours match the default palette's look). Variants of a method
#: share its hue family: ``multitask_matched`` is a darker ``multitask``, ``fomaml`` a
#: lighter ``maml``.
METHOD_COLOURS = {
    "scratch": "#949494",            # grey: no transfer at all
    "zero_shot": "#ca9161",          # brown
    "pretrain_ft": "#0173b2",        # blue: the strong baseline
    "multitask": "#56b4e9",          # light blue: pretraining's compute-matched control
    "multitask_matched": "#035a8c",  # dark blue
    "maml": "#de8f05",               # orange
    "fomaml": "#f5b84a",             # light orange: first-order MAML
    "reptile": "#029e73",            # green
    "metasgd": "#d55e00",            # vermilion
    "anil": "#cc78bc",               # pink
    "lslr": "#fbafe4",               # light pink
    "rule": "#000000",               # black: the hand-written policy of notebooks 06-07
    "pretrain": "#0173b2",           # notebook 06's name of pretrain_ft
}


def method_colour(name: str) -> str:
    """The colour of method ``name`` in :data:`METHOD_COLOURS` (case and ``-``/space/``_`` ignored).

    A name that is not there (a new method) gets a fixed grey-free colour from its
    name, the same in every figure, so that no figure needs its own palette.
    """
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key in METHOD_COLOURS:
        return METHOD_COLOURS[key]
    import zlib

    spare = ["#ece133", "#8c564b", "#17becf", "#bcbd22", "#7f3c8d", "#11a579"]
    return spare[zlib.crc32(key.encode()) % len(spare)]


def slanted_xticks(ax, rotation: float = 30) -> None:
    """Slant the x tick labels, anchored at their right end, so that long names (the
    domains: ``restaurant_style``) neither overlap each other nor drift off their tick."""
    for label in ax.get_xticklabels():
        label.set_rotation(rotation)
        label.set_horizontalalignment("right")
        label.set_rotation_mode("anchor")

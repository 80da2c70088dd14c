"""The Plots sheet: the instances' PNG plots embedded, the selected instance first with its
per-fold plots; at most `MAX_EMBEDDED_PLOTS` (the others are named, not shown)."""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import numpy as np
from openpyxl.drawing.image import Image
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from PIL import Image as PILImage

from xval.report.png import palette_png
from xval.report.results import ExperimentResults, InstanceResult
from xval.report.workbook.cells import SELECTED_MARK, Styles, safe
from xval.report.workbook.registry import SheetContext, register_sheet

MAX_EMBEDDED_PLOTS = 40
"""Plots embedded in the Plots sheet at most (the others are named there, not shown): the
workbook stays small enough to mail."""
PLOT_WIDTH_PX = 480
"""Width an embedded plot is shown at, at least: a wider plot (many classes) is shown at
half its width up to `MAX_PLOT_WIDTH_PX`; the height keeps the aspect ratio, at most
`MAX_PLOT_HEIGHT_PX`."""
MAX_PLOT_WIDTH_PX = 1200
MAX_PLOT_HEIGHT_PX = 1200
_PER_FOLD = re.compile(r"_fold_(\d+)$")


def plot_display_size(width: int, height: int) -> tuple[int, int]:
    """The size `(width, height)` in pixels a `width` x `height` plot is shown at in the
    Plots sheet (see `PLOT_WIDTH_PX`)."""
    shown = min(max(PLOT_WIDTH_PX, width / 2), MAX_PLOT_WIDTH_PX)
    scale = min(shown / max(width, 1), MAX_PLOT_HEIGHT_PX / max(height, 1))
    return max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)


def _fold_of(path: Path) -> int | None:
    match = _PER_FOLD.search(path.stem)
    return int(match.group(1)) if match else None


def plot_files(results: ExperimentResults,
               selected_id: int | None) -> list[tuple[InstanceResult, list[Path]]]:
    """The PNG plots the Plots sheet embeds, per instance.

    Returns:
        list of `(instance, [Path, ...])`: the selected instance first with its
        instance plots then its per-fold plots, then every other instance (by id) with its
        instance plots only; instances without plots are left out.
    """
    out = []
    for r in sorted(results, key=lambda r: (r.id != selected_id, r.id)):
        pngs = sorted(r.layout.plots_dir.glob("*.png"))
        shown = [p for p in pngs if _fold_of(p) is None]
        if r.id == selected_id:
            shown += sorted((p for p in pngs if _fold_of(p) is not None),
                            key=lambda p: _fold_of(p) or 0)
        if shown:
            out.append((r, shown))
    return out


def thumbnail(path: Path) -> io.BytesIO:
    """The plot as a 256-colour PNG at most twice `MAX_PLOT_WIDTH_PX` wide (sharp on
    high-DPI screens), as a `BytesIO`: the file itself when it is one (the plots the engine
    writes, `xval.report.png.palette_png`), else converted.

    The workbook is rebuilt after every instance with every instance's plots: each plot
    file is read once per process (cached on its path, size and modification time).
    """
    stat = path.stat()
    return io.BytesIO(_thumbnail_bytes(str(path), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=2 * MAX_EMBEDDED_PLOTS)
def _thumbnail_bytes(path: str, size: int, mtime_ns: int) -> bytes:
    del size, mtime_ns  # with the path, the cache key: the same file, unchanged
    data = Path(path).read_bytes()
    with PILImage.open(io.BytesIO(data)) as opened:
        if opened.mode == "P" and opened.width <= 2 * MAX_PLOT_WIDTH_PX:
            opened.verify()  # a file cut short fails here, as a decode would
            return data
        image = opened.convert("RGB")
    if image.width > 2 * MAX_PLOT_WIDTH_PX:
        height = int(round(image.height * 2 * MAX_PLOT_WIDTH_PX / image.width))
        image = image.resize((2 * MAX_PLOT_WIDTH_PX, max(height, 1)), PILImage.Resampling.LANCZOS)
    return palette_png(image)


class _Placer:
    """Lays the images out: a title line per instance, a line of linked file names, the
    images under them; counts what was embedded, left out or unreadable."""

    def __init__(self, sheet: Worksheet, styles: Styles) -> None:
        self.sheet, self.styles = sheet, styles
        self.row, self.embedded = 1, 0
        self.left_out: list[str] = []
        self.unreadable: list[str] = []

    def title(self, r: InstanceResult, selected: bool) -> None:
        mark = f" {SELECTED_MARK}" if selected else ""
        comments = " / ".join(c for c in r.comments() if c)
        cell = safe(self.sheet.cell(row=self.row, column=1),
                    f"instance {r.id}{mark}" + (f": {comments}" if comments else ""))
        cell.font = self.styles.bold
        if selected:
            cell.fill = self.styles.selected
        self.row += 1

    def images(self, r: InstanceResult, files: list[Path]) -> None:
        tallest, column = 0, 1
        for path in files:
            relative = path.relative_to(r.path.parent).as_posix()
            if self.embedded >= MAX_EMBEDDED_PLOTS:
                self.left_out.append(relative)
                continue
            try:
                image = Image(thumbnail(path))
            except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError):
                self.unreadable.append(relative)  # not a PNG, cut short, or being replaced
                continue
            width, height = plot_display_size(image.width, image.height)
            image.width, image.height = width, height
            name = safe(self.sheet.cell(row=self.row, column=column), path.name)
            name.hyperlink = relative
            name.font = self.styles.link()
            self.sheet.add_image(image, f"{get_column_letter(column)}{self.row + 1}")
            tallest = max(tallest, height)
            column += int(np.ceil(width / 64)) + 1  # columns of the default width (64 px)
            self.embedded += 1
        self.row += int(np.ceil(tallest / 20)) + 3  # default rows are 20 px high

    def notes(self) -> None:
        for label, names in ((f"Not embedded (at most {MAX_EMBEDDED_PLOTS} plots)",
                              self.left_out),
                             ("Not embedded (unreadable PNG)", self.unreadable)):
            if names:
                safe(self.sheet.cell(row=self.row, column=1), f"{label}: " + ", ".join(names))
                self.row += 1


@register_sheet("Plots", order=70)
def write_plots(sheet: Worksheet, context: SheetContext) -> bool:
    """Each instance's plots as images (`plot_display_size`), a row of images per instance
    under a title line; `False` (no sheet) when no instance has plots."""
    groups = plot_files(context.results, context.selected_id)
    if not groups:
        return False
    placer = _Placer(sheet, context.styles)
    for r, files in groups:
        placer.title(r, r.id == context.selected_id)
        placer.images(r, files)
    placer.notes()
    return True

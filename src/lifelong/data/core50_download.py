"""``--download`` for CORe50: the official tables and the 128×128 images, checksummed.

The files and their MD5 checksums are the ones CORe50's authors publish (the same list
Avalanche's ``core50_data.py`` checks): ``paths.pkl``, ``LUP.pkl`` and ``labels.pkl`` from
the dataset's site and ``core50_128x128.zip`` (5.9 GB, 164,866 PNGs) from the University of
Bologna's server. They go to ``<root>/core50``; the zip is unpacked to ``core50_128x128/`` (the
folder the loader reads; renamed into place only when complete) and then deleted. Files already
there are checked, not fetched again; an interrupted download resumes (see
:mod:`lifelong.data.download`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from lifelong.data.download import Remote, extract_zip, fetch

log = logging.getLogger(__name__)

TABLES_URL = "https://vlomonaco.github.io/core50/data/"
IMAGES_URL = "http://bias.csr.unibo.it/maltoni/download/core50/"
IMAGE_FOLDER = "core50_128x128"
NPZ = "core50_imgs.npz"

TABLES = (
    Remote(TABLES_URL + "paths.pkl", "paths.pkl", "b568f86998849184df3ec3465290f1b0"),
    Remote(TABLES_URL + "LUP.pkl", "LUP.pkl", "33afc26faa460aca98739137fdfa606e"),
    Remote(TABLES_URL + "labels.pkl", "labels.pkl", "281c95774306a2196f4505f22fd60ab1"),
)
IMAGES = Remote(
    IMAGES_URL + "core50_128x128.zip", "core50_128x128.zip", "745f3373fed08d69343f1058ee559e13"
)


def download_core50(
    root: Path,
    tables: tuple[Remote, ...] | None = None,
    images: Remote | None = None,
    progress: bool = True,
) -> Path:
    """Fetch what is missing of CORe50 into ``root/core50``; return that folder.

    A folder (``root/core50`` or ``root``) that already has the tables and the images
    (``core50_128x128/`` or ``core50_imgs.npz``) is used as it is. ``tables`` and ``images``
    default to the official :data:`TABLES` and :data:`IMAGES`.

    Raises:
        DataError: One line when a download, a checksum or the unpacking fails.
    """
    tables = TABLES if tables is None else tables
    images = IMAGES if images is None else images
    for candidate in (root / "core50", root):
        names = [t.filename for t in tables]
        has_tables = all((candidate / name).is_file() for name in names)
        has_images = (candidate / IMAGE_FOLDER).is_dir() or (candidate / NPZ).is_file()
        if has_tables and has_images:
            return candidate
    folder = root / "core50"
    for table in tables:
        fetch(table, folder, progress)
    if not (folder / IMAGE_FOLDER).is_dir() and not (folder / NPZ).is_file():
        archive = fetch(images, folder, progress)
        extract_zip(archive, folder, IMAGE_FOLDER, progress)
        archive.unlink()
        log.info("unpacked %s into %s and deleted the archive", images.filename, folder)
    return folder

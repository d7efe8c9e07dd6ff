"""Fetching official files: resumable, checksummed, with a progress bar, never half in place.

:func:`fetch` downloads one :class:`Remote` into a folder. The bytes go to ``NAME.part``; an
interrupted download resumes from there with an HTTP ``Range`` request (a server that ignores it
sends the whole file again, which replaces the part). Only a file whose size and checksum match
is renamed to ``NAME``, the path loaders read, so a truncated or corrupted download never sits
where a loader would read it: a short download keeps its ``.part`` for the next try, a wrong
checksum deletes it. :func:`extract_zip` unpacks an archive into a temporary folder beside the
target and renames it into place when every member is out.

Every failure is one :class:`~lifelong.errors.DataError` line that names the URL and what to do.
The standard library's ``urllib`` does the HTTP: no extra dependency for a handful of files.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from lifelong.errors import DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
"""Bytes read and hashed at a time."""
ALGORITHMS = ("md5", "sha1", "sha256")


@dataclass(frozen=True)
class Remote:
    """One published file.

    Attributes:
        url: Where it is published.
        filename: The name it gets on disk.
        digest: Its published checksum, lowercase hex; None when only the contents are published
            with one (an archive: the caller checks what it unpacks).
        algorithm: The checksum's algorithm (``md5``, ``sha1`` or ``sha256``).
    """

    url: str
    filename: str
    digest: str | None
    algorithm: str = "md5"

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown checksum algorithm {self.algorithm!r}")


def file_digest(path: Path, algorithm: str) -> str:
    """The hex checksum of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(remote: Remote, folder: Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """``folder / remote.filename``, downloaded (or resumed) and checked if it is not there yet.

    Args:
        remote: The file to fetch.
        folder: Where it goes (created if missing).
        progress: Show a progress bar (on a terminal).
        timeout: Seconds without data before the download counts as stalled.

    Raises:
        DataError: The server cannot be reached or refuses, the download stops short (its part
            stays for the next try), or the checksum differs (the part is deleted). Also when the
            file is already there with another checksum: it is not ours to delete.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / remote.filename
    if target.exists():
        if remote.digest is None:
            return target
        found = file_digest(target, remote.algorithm)
        if found != remote.digest:
            raise DataError(
                f"{target} exists but its {remote.algorithm} is {found}, not the published "
                f"{remote.digest}: delete it and download again"
            )
        return target
    part = folder / (remote.filename + ".part")
    _download(remote, part, progress, timeout)
    checked = None if remote.digest is None else file_digest(part, remote.algorithm)
    if checked != remote.digest:
        part.unlink()
        raise DataError(
            f"{remote.url} arrived with {remote.algorithm} {checked}, not the published "
            f"{remote.digest} (deleted): try again later, or download it yourself to {target}"
        )
    part.replace(target)
    log.info("downloaded %s%s", target, "" if checked is None else f" ({remote.algorithm} checked)")
    return target


def _download(remote: Remote, part: Path, progress: bool, timeout: float) -> None:
    """Write the remote bytes to ``part``, resuming from its current size when it exists."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(remote.url, headers={"User-Agent": "lifelong"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the part already holds every byte
            return
        raise DataError(f"cannot download {remote.url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DataError(
            f"cannot download {remote.url} ({reason}): check the connection, or download it "
            f"yourself to {part.with_suffix('')}"
        ) from None
    with response:
        if response.status != 206:
            offset = 0  # the server sent the whole file
        length = response.headers.get("Content-Length")
        total = None if length is None else offset + int(length)
        received = offset
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            desc=remote.filename,
            disable=None if progress else True,
            leave=False,
        )
        try:
            with part.open("ab" if offset else "wb") as f:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, ValueError) as error:  # a reset connection, http.client.IncompleteRead
            raise _stopped(remote, part, received, total, str(error)) from None
        finally:
            bar.close()
    if total is not None and received < total:
        raise _stopped(remote, part, received, total, "the connection closed")


def _stopped(remote: Remote, part: Path, received: int, total: int | None, why: str) -> DataError:
    of = "" if total is None else f" of {total}"
    return DataError(
        f"the download of {remote.url} stopped at {received}{of} bytes ({why}); run again to "
        f"resume from {part}"
    )


def _unreadable(archive: Path, error: BaseException) -> DataError:
    return DataError(f"cannot unpack {archive} ({error}): delete it and download again")


def extract_zip(archive: Path, folder: Path, member_root: str, progress: bool = True) -> Path:
    """Unpack ``archive`` so that its top folder ``member_root`` becomes ``folder / member_root``.

    The members go to a temporary folder beside the target, which is renamed into place once
    all are out; a member whose path would leave the folder is refused.

    Raises:
        DataError: The archive is not a readable zip, or a member's path is unsafe.
    """
    target = folder / member_root
    if target.exists():
        return target
    staging = folder / f".{member_root}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                name = PurePosixPath(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise DataError(f"{archive} holds an unsafe path {info.filename!r}; not used")
            for info in tqdm(
                members, desc=f"unpacking {archive.name}", disable=None if progress else True
            ):
                zf.extract(info, staging)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(
            f"cannot unpack {archive} ({error}): delete it and download again"
        ) from None
    except DataError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    unpacked = staging / member_root
    if not unpacked.exists():
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{archive} has no {member_root}/ inside: delete it and download again")
    unpacked.replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def extract_member(archive: Path, member: str, target: Path, digest: str, algorithm: str) -> Path:
    """Unpack one file of ``archive`` to ``target`` if its checksum is the published one.

    Raises:
        DataError: The archive is unreadable or lacks ``member``, or the checksum differs (then
            nothing is left at ``target``).
    """
    part = target.with_name(target.name + ".part")
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as source, part.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
    except KeyError:
        part.unlink(missing_ok=True)
        raise DataError(f"{archive} holds no {member}: delete it and download again") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        part.unlink(missing_ok=True)
        raise DataError(
            f"cannot unpack {archive} ({error}): delete it and download again"
        ) from None
    found = file_digest(part, algorithm)
    if found != digest:
        part.unlink()
        raise DataError(
            f"{member} in {archive} has {algorithm} {found}, not the published {digest}: "
            "delete the archive and download again"
        )
    part.replace(target)
    return target

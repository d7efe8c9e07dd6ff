"""The real download code against a local HTTP server on 127.0.0.1 (no internet needed).

The server serves small files, honours ``Range`` requests, and can be told to cut a response
short (it announces the full length and closes the connection halfway).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from lifelong.backbones import imagenet_weights
from lifelong.backbones.imagenet_weights import WeightsRelease, imagenet_mobilenet
from lifelong.backbones.mobilenet import MobileNetConfig, MobileNetV1
from lifelong.data import core50_download
from lifelong.data.catalog import build_stream
from lifelong.data.download import Remote, extract_zip, fetch
from lifelong.data.scenarios import DatasetConfig
from lifelong.errors import ConfigError, DataError

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"
)


@dataclass
class Server:
    """What the local server serves and what it was asked."""

    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)
    ranges: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            if name not in state.files:
                self.send_error(404)
                return
            body = state.files[name]
            start = 0
            requested = self.headers.get("Range")
            if requested:
                state.ranges.append(requested)
                start = int(requested.removeprefix("bytes=").split("-")[0])
            self.send_response(206 if requested else 200)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if name in state.truncate:
                self.wfile.write(body[start : start + (len(body) - start) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_fetch_downloads_checks_and_renames(server: Server, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4000
    server.files["a.bin"] = data
    path = fetch(Remote(server.url + "a.bin", "a.bin", md5(data)), tmp_path, progress=False)
    assert path == tmp_path / "a.bin" and path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
    server.files.clear()  # a second call checks the file and does not ask the server
    assert fetch(Remote(server.url + "a.bin", "a.bin", md5(data)), tmp_path, progress=False)


def test_a_wrong_checksum_is_one_line_and_leaves_nothing(server: Server, tmp_path: Path) -> None:
    server.files["a.bin"] = b"tampered bytes"
    remote = Remote(server.url + "a.bin", "a.bin", md5(b"the published bytes"))
    with pytest.raises(DataError, match="md5") as info:
        fetch(remote, tmp_path, progress=False)
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_download_keeps_its_part_and_resumes(server: Server, tmp_path: Path) -> None:
    data = b"0123456789" * 50_000
    server.files["big.bin"] = data
    server.truncate.add("big.bin")
    remote = Remote(server.url + "big.bin", "big.bin", hashlib.sha256(data).hexdigest(), "sha256")
    with pytest.raises(DataError, match="stopped at") as info:
        fetch(remote, tmp_path, progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "big.bin").exists()  # nothing where a loader would read
    part = tmp_path / "big.bin.part"
    assert 0 < part.stat().st_size < len(data)
    server.truncate.clear()
    assert fetch(remote, tmp_path, progress=False).read_bytes() == data
    assert server.ranges == [f"bytes={len(data) // 2}-"]
    assert not part.exists()


def test_unreachable_server_and_missing_file_are_one_line(server: Server, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="HTTP 404"):
        fetch(Remote(server.url + "none.bin", "none.bin", md5(b"")), tmp_path, progress=False)
    with pytest.raises(DataError, match="cannot download"):
        fetch(Remote("http://127.0.0.1:9/x", "x", md5(b"")), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_with_another_checksum_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"mine")
    with pytest.raises(DataError, match="exists but"):
        fetch(Remote("http://127.0.0.1:9/a.bin", "a.bin", md5(b"theirs")), tmp_path)
    assert (tmp_path / "a.bin").read_bytes() == b"mine"


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_extract_zip_renames_the_folder_into_place_and_refuses_unsafe_paths(
    tmp_path: Path,
) -> None:
    (tmp_path / "good.zip").write_bytes(zipped({"top/a.txt": b"a", "top/sub/b.txt": b"b"}))
    out = extract_zip(tmp_path / "good.zip", tmp_path, "top", progress=False)
    assert (out / "sub" / "b.txt").read_bytes() == b"b"
    (tmp_path / "evil.zip").write_bytes(zipped({"other/../../escape.txt": b"x"}))
    with pytest.raises(DataError, match="unsafe path"):
        extract_zip(tmp_path / "evil.zip", tmp_path, "other", progress=False)
    assert not (tmp_path / "other").exists() and not (tmp_path.parent / "escape.txt").exists()
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot unpack"):
        extract_zip(tmp_path / "bad.zip", tmp_path, "third", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["top"]


def core50_files(source: Path) -> dict[str, bytes]:
    """The tables of a tiny CORe50 and its PNG folder as ``core50_128x128.zip``."""
    from tests.unit.test_core50 import _write

    _write(source, npz=False, png=True)
    files = {name: (source / name).read_bytes() for name in ("paths.pkl", "LUP.pkl", "labels.pkl")}
    images = source / "core50_128x128"
    members = {
        f"core50_128x128/{p.relative_to(images).as_posix()}": p.read_bytes()
        for p in sorted(images.rglob("*.png"))
    }
    files["core50_128x128.zip"] = zipped(members)
    return files


def served_core50(server: Server, tmp_path: Path) -> tuple[dict[str, bytes], tuple[Remote, ...]]:
    """A tiny CORe50 on the server, and its tables as remotes with their MD5s."""
    files = core50_files(tmp_path / "source")
    server.files.update(files)
    names = ("paths.pkl", "LUP.pkl", "labels.pkl")
    return files, tuple(Remote(server.url + name, name, md5(files[name])) for name in names)


def test_core50_download_then_load(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, tables = served_core50(server, tmp_path)
    zip_name = "core50_128x128.zip"
    monkeypatch.setattr(core50_download, "TABLES", tables)
    monkeypatch.setattr(
        core50_download, "IMAGES", Remote(server.url + zip_name, zip_name, md5(files[zip_name]))
    )
    root = tmp_path / "data"
    config = DatasetConfig(name="core50-nicv2-391", root=str(root), download=True)
    stream = build_stream(config, 0)
    assert len(stream) == 391 and stream.num_classes == 50
    folder = root / "core50"
    assert (folder / "core50_128x128").is_dir() and not (folder / zip_name).exists()
    server.files.clear()  # a second --download finds everything in place
    assert len(build_stream(config, 0)) == 391


def test_core50_download_with_a_tampered_archive_leaves_no_images(
    server: Server, tmp_path: Path
) -> None:
    _, tables = served_core50(server, tmp_path)
    wrong = Remote(server.url + "core50_128x128.zip", "core50_128x128.zip", md5(b"other"))
    with pytest.raises(DataError, match="md5"):
        core50_download.download_core50(tmp_path / "data", tables, wrong, progress=False)
    folder = tmp_path / "data" / "core50"
    assert not (folder / "core50_128x128").exists()
    assert not any(p.name.startswith("core50_128x128") for p in folder.iterdir())


def weights_release(server: Server, tmp_path: Path, sha1: str | None = None) -> WeightsRelease:
    torch.manual_seed(0)
    model = MobileNetV1(MobileNetConfig(), (3, 32, 32), 50)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    weights = buffer.getvalue()
    server.files["w.pth.zip"] = zipped({"w.pth": weights})
    digest = sha1 or hashlib.sha1(weights).hexdigest()
    return WeightsRelease(Remote(server.url + "w.pth.zip", "w.pth.zip", None), "w.pth", digest)


def test_imagenet_weights_are_fetched_once_and_loaded(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imagenet_weights, "MOBILENET_W1", weights_release(server, tmp_path))
    monkeypatch.setenv("LIFELONG_CACHE_DIR", str(tmp_path / "cache"))
    model = MobileNetV1(MobileNetConfig(pretrained="imagenet"), (3, 32, 32), 50)
    torch.manual_seed(0)
    reference = MobileNetV1(MobileNetConfig(), (3, 32, 32), 50)
    torch.testing.assert_close(model.state_dict(), reference.state_dict())
    cached = tmp_path / "cache" / "weights"
    assert sorted(p.name for p in cached.iterdir()) == ["w.pth"]  # the zip is gone
    server.files.clear()
    assert imagenet_mobilenet(1.0) == cached / "w.pth"  # no second download


def test_imagenet_weights_with_a_wrong_sha1_are_not_kept(server: Server, tmp_path: Path) -> None:
    release = weights_release(server, tmp_path, sha1="0" * 40)
    with pytest.raises(DataError, match="sha1"):
        imagenet_mobilenet(1.0, release, tmp_path / "cache")
    assert not (tmp_path / "cache" / "w.pth").exists()
    with pytest.raises(ConfigError, match=r"width 1\.0"):
        imagenet_mobilenet(0.5, release, tmp_path / "cache")

"""How fast image datasets load: the first load (parallel decode) and the cached load (issue 19).

Two datasets, each loaded twice in fresh processes with an empty cache folder first:

* the Tiny-ImageNet subset of ``../shared/data`` (20 classes, 11,000 JPEGs of 64×64), extracted
  into ``--work``;
* a synthetic ImageNet-layout folder of ``--images`` 64×64 JPEGs (default 100,000 train in 100
  classes, plus 10 val images per class), written once into ``--work`` and reused.

Each load is a fresh ``python`` process (as a run loads its data), timed around the loader call
only; the first load decodes every file on all cores and writes the cache, the second
memory-maps the cache after checking its checksums. Prints images per second per core for the
first load. Results also go to ``benchmarks/out/image_cache.json``.

Usage:
    python benchmarks/image_cache.py [--images 100000] [--work benchmarks/out/image_cache]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY_TARBALL = REPO.parent / "shared" / "data" / "tiny-imagenet-200-sub20.tar.gz"
LOAD = """
import json, sys, time
start = time.perf_counter()
if sys.argv[1] == "tiny":
    from lifelong.data.tinyimagenet import load_tiny_imagenet as load
else:
    from lifelong.data.imagefolder import load_image_folder
    load = lambda root: load_image_folder(root, 64)
imported = time.perf_counter()
data = load(sys.argv[2])
loaded = time.perf_counter()
print(json.dumps({"seconds": loaded - imported, "images": len(data.train) + len(data.test)}))
"""


def write_synthetic(folder: Path, images: int, classes: int = 100, val_per_class: int = 10) -> None:
    """An ImageNet-layout folder of random-texture 64×64 JPEGs (skipped when complete)."""
    import torch
    from torchvision.io import encode_jpeg

    done = folder / "complete"
    if done.is_file() and done.read_text() == str(images):
        return
    shutil.rmtree(folder, ignore_errors=True)
    per_class = images // classes

    def write_class(label: int) -> None:
        generator = torch.Generator().manual_seed(label)
        for split, count in (("train", per_class), ("val", val_per_class)):
            target = folder / split / f"c{label:03d}"
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = torch.randint(0, 256, (3, 16, 16), generator=generator, dtype=torch.uint8)
                image = image.repeat_interleave(4, 1).repeat_interleave(4, 2)  # 64×64 blocks
                (target / f"{i}.JPEG").write_bytes(encode_jpeg(image, quality=90).numpy())

    with ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_class, range(classes)))
    done.write_text(str(images))


def timed_load(kind: str, root: Path, cache: Path) -> dict[str, float]:
    """Seconds of one load in a fresh process with ``cache`` as the cache folder."""
    env = {**os.environ, "LIFELONG_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-c", LOAD, kind, str(root)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=REPO / "benchmarks/out/image_cache")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/out/image_cache.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    datasets: dict[str, tuple[str, Path]] = {}
    if TINY_TARBALL.is_file():
        tiny = args.work / "tiny"
        if not (tiny / "tiny-imagenet-200").is_dir():
            with tarfile.open(TINY_TARBALL) as tar:
                tar.extractall(tiny, filter="data")
        datasets["Tiny-ImageNet subset (../shared/data)"] = ("tiny", tiny)
    synthetic = args.work / f"synthetic-{args.images}"
    write_synthetic(synthetic, args.images)
    datasets[f"synthetic ImageNet layout, {args.images:,} train JPEGs"] = ("folder", synthetic)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rows = {}
    for name, (kind, root) in datasets.items():
        cache = args.work / f"cache-{kind}"
        shutil.rmtree(cache, ignore_errors=True)
        first = timed_load(kind, root, cache)
        cached = timed_load(kind, root, cache)
        again = timed_load(kind, root, cache)
        per_core = first["images"] / first["seconds"] / (cores or 1)
        rows[name] = {
            "images": first["images"],
            "first_s": first["seconds"],
            "cached_s": [cached["seconds"], again["seconds"]],
            "images_per_s_per_core": per_core,
        }
        print(
            f"{name}: {first['images']:,.0f} images, first load {first['seconds']:.1f} s "
            f"({per_core:,.0f} images/s per core, {cores} cores), cached "
            f"{cached['seconds']:.2f} s / {again['seconds']:.2f} s",
            flush=True,
        )
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores")
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

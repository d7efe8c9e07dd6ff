"""The in-memory image set every loader returns: uint8 images and int64 labels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lifelong.errors import DataError


@dataclass(frozen=True)
class ImageSet:
    """Images held in memory as uint8 (N, C, H, W) with int64 labels (N,).

    Loaded once from disk; experiences and batches are index views of it.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise DataError(
                f"images must be uint8 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise DataError(
                f"labels must be int64 of shape ({self.x.shape[0]},), got {self.y.dtype} "
                f"{tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)

    def select(self, index: torch.Tensor) -> ImageSet:
        """Return the subset at ``index`` (a bool mask or integer indices)."""
        return ImageSet(self.x[index], self.y[index])

    def with_classes(self, classes: tuple[int, ...]) -> ImageSet:
        """Return the subset whose labels are in ``classes``."""
        mask = torch.isin(self.y, torch.tensor(classes, dtype=torch.int64))
        return self.select(mask)

    def resized(self, size: int) -> ImageSet:
        """The images resized to ``size`` × ``size`` (antialiased), once; same size: itself."""
        if self.x.shape[-2:] == (size, size):
            return self
        from torchvision.transforms.v2 import functional as tvf

        resized: torch.Tensor = tvf.resize(self.x, [size, size], antialias=True)
        return ImageSet(resized, self.y)

    @staticmethod
    def concat(parts: list[ImageSet]) -> ImageSet:
        """Concatenate several image sets of the same image shape."""
        return ImageSet(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))


@dataclass(frozen=True)
class TrainTest:
    """A dataset's train and test splits and the class names, as loaded from disk."""

    train: ImageSet
    test: ImageSet
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        # every loader's backstop: a label past the class list would silently drop its images
        for split, images in (("train", self.train), ("test", self.test)):
            if len(images) and (int(images.y.min()) < 0 or int(images.y.max()) >= self.num_classes):
                raise DataError(
                    f"the {split} split has labels {int(images.y.min())}..{int(images.y.max())} "
                    f"but the dataset has {self.num_classes} classes; its files are corrupt"
                )

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def resized(self, size: int | None) -> TrainTest:
        """Both splits resized to ``size`` × ``size`` (None: as loaded)."""
        if size is None:
            return self
        return TrainTest(self.train.resized(size), self.test.resized(size), self.class_names)

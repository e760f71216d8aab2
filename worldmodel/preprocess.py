"""Raw camera frames -> normalized model input, as the reference evaluation does it.

The largest centred square crop, a bilinear resize (``align_corners=False``, no antialiasing) on
float pixel values in [0, 255], then per-channel ImageNet normalization.

A model with two camera views (``PredictorConfig.views``) takes each frame as the views side by
side, exterior left, wrist right (:func:`tile_views`); it splits them again (:func:`split_views`)
before the crop, so each view is preprocessed and encoded as a single-view model's frame is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def as_frame_tensor(frames: np.ndarray | Tensor, name: str = "frames") -> Tensor:
    """Check and convert uint8 RGB frames ``[T, H, W, 3]`` (or one ``[H, W, 3]``) to a uint8 tensor ``[T, H, W, 3]``."""
    frames = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray) else frames)
    if frames.ndim == 3:
        frames = frames.unsqueeze(0)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{name} must be RGB frames [T, H, W, 3] (or one [H, W, 3]), got shape {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        raise ValueError(
            f"{name} must be uint8 pixels in [0, 255], got dtype {frames.dtype}; convert with .astype(np.uint8)"
        )
    return frames


def tile_views(views: Sequence[np.ndarray]) -> np.ndarray:
    """Camera views, each uint8 ``[..., H, W, 3]`` of one shape -> one frame ``[..., H, V * W, 3]``, side by side.

    Raises:
        ValueError: the views differ in shape (the message gives the shapes).
    """
    shapes = {tuple(np.shape(view)) for view in views}
    if len(shapes) != 1:
        raise ValueError(f"camera views must have one shape to be tiled, got {sorted(shapes)}")
    return np.concatenate(views, axis=-2)


def model_view(exterior: np.ndarray, wrist: np.ndarray, views: int) -> np.ndarray:
    """What a model with ``views`` camera views sees: the exterior image(s) ``[..., H, W, 3]`` alone, or
    (2 views) exterior and wrist side by side ``[..., H, 2W, 3]`` (:func:`tile_views`).

    Raises:
        ValueError: ``views`` is neither 1 nor 2.
    """
    if views == 1:
        return exterior
    if views == 2:
        return tile_views([exterior, wrist])
    raise ValueError(f"the simulator has two cameras (exterior, wrist); a model with {views} views cannot be evaluated")


def split_views(frames: Tensor, views: int) -> list[Tensor]:
    """Frames ``[T, H, V * W, 3]`` (:func:`tile_views`) -> ``V`` frames ``[T, H, W, 3]``, left to right.

    Raises:
        ValueError: the width is not a multiple of ``views``.
    """
    width = frames.shape[-2]
    if width % views:
        raise ValueError(
            f"frames of width {width} px cannot hold {views} views side by side: a {views}-view model takes "
            f"each frame as its camera views tiled left to right (worldmodel.preprocess.tile_views)"
        )
    return list(frames.split(width // views, dim=-2))


def center_square_crop(frames: Tensor) -> Tensor:
    """``[..., H, W]`` -> ``[..., S, S]`` with ``S = min(H, W)``, centred (torchvision's rounding)."""
    H, W = frames.shape[-2:]
    side = min(H, W)
    top = int(round((H - side) / 2.0))
    left = int(round((W - side) / 2.0))
    return frames[..., top : top + side, left : left + side]


def preprocess_frames(frames: np.ndarray | Tensor, img_size: int, device: torch.device | str = "cpu") -> Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> normalized float32 ``[T, 3, img_size, img_size]``."""
    x = as_frame_tensor(frames).to(device).permute(0, 3, 1, 2).float()  # [T, 3, H, W], values in [0, 255]
    x = center_square_crop(x)
    x = F.interpolate(x, size=(img_size, img_size), mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1) * 255.0
    return (x - mean) / std


def frames_to_clip(frames: np.ndarray | Tensor, img_size: int, device: torch.device | str = "cpu") -> Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> one clip ``[1, 3, T, img_size, img_size]`` (the reference layout)."""
    return preprocess_frames(frames, img_size, device).permute(1, 0, 2, 3).unsqueeze(0)

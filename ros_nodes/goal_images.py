"""Goal images on disk: capture one on the robot, keep it, load it next session.

The workflow on a lab robot: stop the planner, move the arm (and objects) into the scene you want,
call the planner node's ``~/capture_goal`` service (the newest camera frame becomes the goal and is
saved here as PNG), put the scene back, ``~/start``. Next time, ``goal_file:=<that png>`` starts the
node with it. The files are plain RGB PNGs, so any photo of the scene from the robot's camera works.
"""

from __future__ import annotations

import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from jepa_mpc_foundation.atomic_files import atomic_path


def check_goal_image(image: np.ndarray, where: str) -> np.ndarray:
    """``image`` as uint8 RGB ``[H, W, 3]``; ValueError naming ``where`` and the fix otherwise."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]  # RGBA PNG: the alpha channel carries nothing for the encoder
    if image.ndim != 3 or image.shape[-1] != 3 or min(image.shape[:2]) < 1:
        raise ValueError(f"{where}: a goal image must be RGB [H, W, 3], got shape {image.shape}; save it as colour PNG")
    if image.dtype != np.uint8:
        raise ValueError(f"{where}: a goal image must have 8-bit channels, got {image.dtype}; save it as 8-bit PNG")
    return image


def save_goal_image(image: np.ndarray, directory: str | Path, stamp_s: float | None = None) -> Path:
    """Write ``image`` (uint8 ``[H, W, 3]``) as ``goal_<UTC time>.png`` in ``directory``, atomically."""
    image = check_goal_image(image, "save_goal_image")
    stamp_s = time.time() if stamp_s is None else stamp_s
    name = time.strftime("goal_%Y%m%d_%H%M%S", time.gmtime(stamp_s)) + f"_{int(stamp_s * 1000) % 1000:03d}.png"
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, image, format="PNG")
    return path


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""What a goal image file is named: the PNGs ``~/capture_goal`` saves, and photos."""


def load_goal_image(path: str | Path) -> np.ndarray:
    """A goal image file -> uint8 ``[H, W, 3]``.

    Raises:
        ValueError: naming ``path`` and the fix: it is a directory (naming an image in it, if any), it does
            not exist, it is not an image, or not an 8-bit RGB one.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"goal image {path} is a directory; {_directory_fix(path)}")
    if not path.is_file():
        raise ValueError(f"goal image {path} does not exist; capture one with the ~/capture_goal service")
    try:
        image = imageio.imread(path)
    except Exception as exc:
        raise ValueError(f"goal image {path} could not be read as an image ({type(exc).__name__}: {exc})") from exc
    return check_goal_image(image, f"goal image {path}")


def _directory_fix(directory: Path) -> str:
    """What to give instead of ``directory`` where a goal image file is expected, naming an image in it if any."""
    try:
        images = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    except OSError:  # unreadable: the advice stands without an example
        images = []
    fix = (
        "a goal image file (PNG/JPEG) is expected: give the path of one file (goal_file) "
        "or of several in order (goal_files)"
    )
    if not images:
        return f"{fix}; it holds no image (capture one with the ~/capture_goal service)"
    return f"{fix}, e.g. {images[-1]} (the last by name of its {len(images)} image(s))"

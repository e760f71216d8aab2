"""Episode videos people look at: the camera view, the goal image beside it, the energy over time."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from jepa_mpc_foundation.atomic_files import atomic_path  # noqa: E402

PANEL = 192  # pixels per side of each image panel


def _upscale(image: np.ndarray, size: int = PANEL) -> np.ndarray:
    """Nearest-neighbour resize of uint8 ``[H, W, 3]`` to ``[size, size, 3]`` (keeps small renders crisp)."""
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.NEAREST))


def energy_panel(energies: list[float], total_steps: int, width: int, height: int = 96) -> np.ndarray:
    """A small plot of the executed plan's energy per step, uint8 ``[height, width, 3]``."""
    fig = plt.figure(figsize=(width / 100, height / 100), dpi=100)
    ax = fig.add_axes((0.1, 0.22, 0.87, 0.56))
    ax.plot(range(len(energies)), energies, color="tab:blue", marker=".")
    ax.set_xlim(0, max(total_steps - 1, 1))
    if energies:
        low, high = min(energies), max(energies)
        ax.set_ylim(low - 0.05 * (high - low + 1e-6), high + 0.05 * (high - low + 1e-6))
    ax.set_title("left: camera now, right: goal or sub-goal; energy = mean L1 to its tokens", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.canvas.draw()
    panel = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return panel


def compose_frame(view: np.ndarray, goal: np.ndarray, energies: list[float], total_steps: int) -> np.ndarray:
    """``[current view | goal image]`` above the energy curve so far."""
    top = np.concatenate([_upscale(view), _upscale(goal)], axis=1)
    bottom = energy_panel(energies, total_steps, width=top.shape[1])
    return np.concatenate([top, bottom[:, : top.shape[1]]], axis=0)


def write_gif(path: str | Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write frames as a looping GIF, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        imageio.mimsave(tmp, frames, format="GIF", duration=1000.0 / fps, loop=0)
    return path

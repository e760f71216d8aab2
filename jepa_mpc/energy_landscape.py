"""``jepa-mpc energy``: draw the one-step energy landscape over a grid of dx, dy (and dz slices).

For every displacement ``a = [dx, dy, dz, 0, 0, 0, 0]`` of the grid the world model predicts the
frame after ``a`` from the current frame and state, and the energy is the planner's: mean L1 between
the predicted tokens and the goal frame's tokens. A well-trained model has its minimum near the true
displacement between the two frames (as in the V-JEPA 2 demo notebook's landscape plot).

Writes ``OUT.png`` (one heat map per dz slice, the minimum marked with a star, the true displacement
with a cross when known), ``OUT.npy`` (the energies ``[Z, Y, X]``) and ``OUT.json`` (axes, minimum,
true displacement).

Example::

    jepa-mpc energy --checkpoint vjepa2-ac-vitg.pt --frames franka_example_traj.npz --out landscape.png
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from jepa_mpc_foundation.atomic_files import write_bytes_atomic, write_json_atomic
from jepa_mpc_foundation.pose import ACTION_DIM, STATE_DIM
from planner.energy import goal_energy
from planner.interface import RolloutModel

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@torch.no_grad()
def energy_grid(
    model: RolloutModel,
    context_tokens: Tensor,
    context_states: Tensor,
    goal_tokens: Tensor,
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    batch_size: int = 128,
    progress: bool = True,
) -> np.ndarray:
    """One-step energies ``[Z, Y, X]`` of the translations ``dx [X] x dy [Y] x dz [Z]``.

    ``context_tokens [1, Tc, N, D]``, ``context_states [1, Tc, 7]``, ``goal_tokens [N, D]``.
    """
    zz, yy, xx = np.meshgrid(dz, dy, dx, indexing="ij")  # each [Z, Y, X]
    actions = torch.zeros(xx.size, 1, ACTION_DIM)  # [Z*Y*X, 1, 7]
    actions[:, 0, 0] = torch.as_tensor(xx.reshape(-1), dtype=torch.float32)
    actions[:, 0, 1] = torch.as_tensor(yy.reshape(-1), dtype=torch.float32)
    actions[:, 0, 2] = torch.as_tensor(zz.reshape(-1), dtype=torch.float32)
    actions = actions.to(model.device)
    context_states = context_states.to(model.device)  # a caller's CPU states beside a GPU model's tokens
    energies = []
    for chunk in tqdm(actions.split(batch_size), desc="energy grid", unit="batch", disable=not progress):
        predicted = model.rollout(context_tokens, context_states, chunk)  # [b, 1, N, D]
        energies.append(goal_energy(predicted, goal_tokens).cpu())
    return torch.cat(energies).numpy().reshape(xx.shape)


def plot_landscape(
    energies: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    dz: np.ndarray,
    true_displacement: np.ndarray | None,
    title: str,
) -> bytes:
    """PNG bytes: one dx/dy heat map per dz slice, minimum (star) and true displacement (cross) marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z_min, y_min, x_min = np.unravel_index(np.nanargmin(energies), energies.shape)
    true_slice = None if true_displacement is None else int(np.argmin(np.abs(dz - true_displacement[2])))
    fig, axes = plt.subplots(1, len(dz), figsize=(4.2 * len(dz) + 1.0, 4.2), squeeze=False, layout="constrained")
    extent = (dx[0], dx[-1], dy[0], dy[-1])
    vmin, vmax = np.nanmin(energies), np.nanmax(energies)
    for z, ax in enumerate(axes[0]):
        image = ax.imshow(
            energies[z], origin="lower", extent=extent, aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis"
        )
        ax.set_title(f"dz = {dz[z]:+.3f} m")
        ax.set_xlabel("dx (m)")
        ax.set_ylabel("dy (m)")
        if z == z_min:
            ax.plot(
                dx[x_min],
                dy[y_min],
                marker="*",
                color="white",
                markersize=14,
                markeredgecolor="black",
                linestyle="none",
                clip_on=False,
                zorder=5,
                label=f"minimum {energies[z_min, y_min, x_min]:.4f}",
            )
        if true_slice == z:
            ax.plot(
                true_displacement[0],
                true_displacement[1],
                marker="X",
                color="red",
                markersize=11,
                markeredgecolor="black",
                linestyle="none",
                clip_on=False,
                zorder=5,
                label=f"true displacement (dz {true_displacement[2]:+.3f})",
            )
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), label="energy (mean L1 to goal tokens)")
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


@dataclass
class EnergyConfig:
    """``jepa-mpc energy``: the checkpoint, the two frames, the grid and the output file."""

    checkpoint: str = field(metadata={"help": "project checkpoint or released vjepa2-ac file"})
    frames: tuple[str, ...] = field(
        metadata={"help": ".npz with observations [1,T,H,W,3] uint8 and states [1,T,7], or two images (current, goal)"}
    )
    context_index: int = field(default=0, metadata={"help": "npz frame used as the current frame"})
    goal_index: int = field(default=-1, metadata={"help": "npz frame used as the goal frame"})
    state: tuple[float, ...] | None = field(default=None, metadata={"help": "current 7-D state (with image files)"})
    goal_state: tuple[float, ...] | None = field(
        default=None, metadata={"help": "goal 7-D state, to mark the true displacement (with image files)"}
    )
    range: float | None = field(
        default=None,
        metadata={
            "help": "grid spans [-range, range] m (default: 0.075 as the reference notebook, widened "
            "to 1.2 x the true displacement when that is larger)"
        },
    )
    points: int = field(default=11, metadata={"help": "grid points per axis (dx and dy)"})
    dz: tuple[float, ...] | None = field(default=None, metadata={"help": "dz slices in m (default: -range, 0, +range)"})
    batch_size: int = field(default=128, metadata={"help": "grid actions per predictor call"})
    img_size: int = field(default=256, metadata={"help": "input size of a released checkpoint"})
    device: str = field(default="", metadata={"help": "cpu or cuda; empty = cuda when present"})
    out: str = field(default="energy_landscape.png", metadata={"help": "output PNG (.npy and .json beside it)"})

    def __post_init__(self) -> None:
        if self.points < 2:
            raise ValueError(f"points must be >= 2, got {self.points}")
        if self.range is not None and not self.range > 0:
            raise ValueError(f"range must be > 0, got {self.range}")
        for name in ("state", "goal_state"):
            value = getattr(self, name)
            if value is not None and len(value) != STATE_DIM:
                raise ValueError(f"{name} must be {STATE_DIM} numbers (x y z rx ry rz gripper), got {len(value)}")


def _read_inputs(config: EnergyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(context frame [H, W, 3], goal frame [H, W, 3], context state [7], goal state [7] or None)."""
    paths = [Path(p) for p in config.frames]
    for path in paths:
        if path.is_dir():
            raise ValueError(
                f"--frames: {path} is a directory; --frames takes files: one .npz, or two images "
                "(current, goal): give the path of each file"
            )
        if not path.is_file():
            raise FileNotFoundError(f"--frames: {path} does not exist")
    if len(paths) == 1 and paths[0].suffix == ".npz":
        with np.load(paths[0]) as data:
            missing = {"observations", "states"} - set(data.files)
            if missing:
                raise ValueError(
                    f"--frames {paths[0]}: missing key(s) {sorted(missing)}; expected "
                    "observations [1, T, H, W, 3] uint8 and states [1, T, 7]"
                )
            observations, states = data["observations"], data["states"]
        if (
            observations.ndim != 5
            or states.shape != (1, observations.shape[1], STATE_DIM)
            or observations.dtype != np.uint8
        ):
            raise ValueError(
                f"--frames {paths[0]}: observations {observations.shape} {observations.dtype} and states "
                f"{states.shape} must be [1, T, H, W, 3] uint8 and [1, T, 7]"
            )
        frames, states = observations[0], states[0].astype(np.float32)
        c, g = config.context_index, config.goal_index
        return frames[c], frames[g], states[c], states[g]
    if len(paths) != 2 or any(p.suffix.lower() not in _IMAGE_SUFFIXES for p in paths):
        raise ValueError("--frames takes one .npz file, or two image files (current, goal)")
    if config.state is None:
        raise ValueError("--state x y z rx ry rz g is required with image files (the predictor needs the pose)")
    import imageio.v3 as iio

    current, goal = (np.asarray(iio.imread(p))[..., :3].astype(np.uint8) for p in paths)
    goal_state = None if config.goal_state is None else np.asarray(config.goal_state, dtype=np.float32)
    return current, goal, np.asarray(config.state, dtype=np.float32), goal_state


def draw_energy_landscape(config: EnergyConfig) -> None:
    """Compute the energy grid of ``config`` and write ``OUT.png``, ``OUT.npy`` and ``OUT.json``.

    Raises FileNotFoundError / ValueError for unusable frames, RuntimeError if every energy is non-finite.
    """
    from worldmodel.world_model import load_world_model

    current, goal, state, goal_state = _read_inputs(config)
    model = load_world_model(config.checkpoint, device=config.device or None, img_size=config.img_size)
    tokens = model.encode_frames(np.stack([current, goal]))  # [1, 2, N, D]
    context_states = torch.as_tensor(state)[None, None].to(model.device)  # [1, 1, 7]
    true_displacement = None if goal_state is None else (goal_state[:3] - state[:3]).astype(np.float64)
    grid_range = config.range
    if grid_range is None:
        grid_range = 0.075 if true_displacement is None else max(0.075, 1.2 * float(np.abs(true_displacement).max()))
    dx = np.linspace(-grid_range, grid_range, config.points)
    dy = dx.copy()
    dz = np.asarray(config.dz if config.dz is not None else [-grid_range, 0.0, grid_range], dtype=np.float64)
    energies = energy_grid(model, tokens[:, :1], context_states, tokens[0, 1], dx, dy, dz, config.batch_size)
    if not np.isfinite(energies).any():
        raise RuntimeError(f"every energy of the grid is non-finite: {config.checkpoint} diverges on these frames")

    z, y, x = np.unravel_index(np.nanargmin(energies), energies.shape)
    minimum = {"dx": float(dx[x]), "dy": float(dy[y]), "dz": float(dz[z]), "energy": float(energies[z, y, x])}
    out = Path(config.out)
    png = plot_landscape(energies, dx, dy, dz, true_displacement, f"energy landscape: {Path(config.checkpoint).name}")
    write_bytes_atomic(out, png)
    buffer = io.BytesIO()
    np.save(buffer, energies.astype(np.float32))
    write_bytes_atomic(out.with_suffix(".npy"), buffer.getvalue())
    summary = {
        "checkpoint": str(config.checkpoint),
        "frames": [str(p) for p in config.frames],
        "grid_shape": "[dz, dy, dx]",
        "dx": dx.tolist(),
        "dy": dy.tolist(),
        "dz": dz.tolist(),
        "minimum": minimum,
        "true_displacement": None if true_displacement is None else true_displacement.tolist(),
    }
    write_json_atomic(out.with_suffix(".json"), summary, indent=2)
    print(
        f"minimum energy {minimum['energy']:.4f} at dx={minimum['dx']:+.3f} dy={minimum['dy']:+.3f} "
        f"dz={minimum['dz']:+.3f} m"
        + ("" if true_displacement is None else f"; true displacement {np.round(true_displacement, 3).tolist()}")
    )
    print(f"wrote {out}, {out.with_suffix('.npy')}, {out.with_suffix('.json')}")

"""``jepa-mpc encode``: encode frames with a checkpoint and print the energy of a few actions.

The smallest end-to-end check of a checkpoint: the current frame and state are encoded, candidate
one-step actions are rolled through the predictor, and each prediction's mean L1 distance to the
goal frame's tokens (the planner's energy) is printed. The action that actually happened between
the two frames should score lowest for a trained model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from jepa_mpc_foundation.pose import ACTION_DIM, action_between
from worldmodel import load_world_model


@dataclass
class EncodeConfig:
    """``jepa-mpc encode``: a checkpoint and a file of frames."""

    checkpoint: str = field(metadata={"help": "project checkpoint or released vjepa2-ac file"})
    frames: str = field(metadata={"help": ".npz with observations [1,T,H,W,3] uint8 and states [1,T,7]"})
    device: str = field(default="", metadata={"help": "cpu or cuda; empty = cuda when present"})


def encode(config: EncodeConfig) -> None:
    """Print the tokens' shape and the energy of no motion, the true action and its opposite."""
    with np.load(config.frames) as data:
        frames, states = data["observations"][0], torch.as_tensor(data["states"][0], dtype=torch.float32)
    model = load_world_model(config.checkpoint, device=config.device or None)
    tokens = model.encode_frames(frames)  # [1, T, N, D]
    print(
        f"{Path(config.frames).name}: {frames.shape[0]} frames {frames.shape[1]}x{frames.shape[2]} "
        f"-> tokens {tuple(tokens.shape)} ({model.device})"
    )

    states = states.to(model.device)
    true_action = action_between(states[0], states[-1])
    candidates = {
        "no motion": torch.zeros(ACTION_DIM, device=model.device),
        "true action": true_action,
        "opposite": -true_action,
    }
    actions = torch.stack(list(candidates.values())).unsqueeze(1)  # [S, 1, 7]
    with torch.no_grad():
        predicted = model.rollout(tokens[:, :1], states[None, :1], actions)  # [S, 1, N, D]
    energy = (predicted[:, -1] - tokens[:, -1]).abs().mean(dim=(-1, -2))
    for name, value in zip(candidates, energy.tolist()):
        print(f"  energy({name:>11}) = {value:.4f}")

"""``jepa-mpc encode``: encode frames with a checkpoint and print the energy of a few actions.

The smallest end-to-end check of a checkpoint: the current frame and state are encoded, candidate
one-step actions are rolled through the predictor, and each prediction's mean L1 distance to the
goal frame's tokens (the planner's energy) is printed. The action that actually happened between
the two frames should score lowest for a trained model.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from foundation.pose import action_between
from worldmodel import load_world_model


def encode_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="jepa-mpc encode", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="project checkpoint or released vjepa2-ac file")
    parser.add_argument("--frames", required=True, help=".npz with observations [1,T,H,W,3] uint8 and states [1,T,7]")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    args = parser.parse_args(argv)

    with np.load(args.frames) as data:
        frames, states = data["observations"][0], torch.as_tensor(data["states"][0], dtype=torch.float32)
    model = load_world_model(args.checkpoint, device=args.device)
    tokens = model.encode_frames(frames)  # [1, T, N, D]
    print(f"{Path(args.frames).name}: {frames.shape[0]} frames {frames.shape[1]}x{frames.shape[2]} "
          f"-> tokens {tuple(tokens.shape)} ({model.device})")

    states = states.to(model.device)
    true_action = action_between(states[0], states[-1])
    candidates = {
        "no motion": torch.zeros(7, device=model.device),
        "true action": true_action,
        "opposite": -true_action,
    }
    actions = torch.stack(list(candidates.values())).unsqueeze(1)  # [S, 1, 7]
    predicted = model.rollout(tokens[:, :1], states[None, :1], actions)  # [S, 1, N, D]
    energy = (predicted[:, -1] - tokens[:, -1]).abs().mean(dim=(-1, -2))
    for name, value in zip(candidates, energy.tolist()):
        print(f"  energy({name:>11}) = {value:.4f}")
    return 0

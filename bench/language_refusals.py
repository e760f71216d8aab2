"""How often a language model refuses instructions naming a cube that is not in view, and how often it wrongly
refuses one that is (issue 31, "never a plan toward a guess").

For each seeded lang-touch scene (two or three of the red, green and yellow cubes; instructions of every split),
the model reads "touch the <colour> cube" for each of the three colours from the first frame; a colour whose cube
is not on the table should be refused (the match head), one whose cube is there accepted. Also counted: an
unknown colour ("touch the orange cube", the word rule) and an empty instruction.

    python bench/language_refusals.py --checkpoint worldmodel/language_model/model.pt --episodes 50
"""

from __future__ import annotations

import argparse
import json

import gymnasium
from tqdm import tqdm

import sim
from sim.config import SimConfig
from sim.env import EXTERIOR_IMAGE, WRIST_IMAGE
from sim.tasks.instructions import CUBE_COLOURS
from sim.tasks.language import CUBE_BODIES
from worldmodel import load_world_model
from worldmodel.language_goal import InstructionError
from worldmodel.model_needs import model_needs
from worldmodel.preprocess import model_view


def refused(model, instruction: str, tokens) -> bool:
    try:
        model.goal_from_text(instruction, tokens)
    except InstructionError:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="worldmodel/language_model/model.pt")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()

    model = load_world_model(args.checkpoint, device="cpu")
    needs = model_needs(args.checkpoint)
    env = gymnasium.make(sim.env_id("lang-touch"), config=SimConfig(image_size=needs.image_size), instructions="all")
    counts = {"present": [0, 0], "absent": [0, 0], "unknown colour": [0, 0], "empty": [0, 0]}  # [refused, asked]
    for seed in tqdm(range(args.seed, args.seed + args.episodes), desc="scenes", unit="scene"):
        obs, _ = env.reset(seed=seed)
        frame = model_view(obs[EXTERIOR_IMAGE], obs[WRIST_IMAGE], model.config.predictor.views)
        tokens = model.encode_frames(frame[None])[0, 0]  # [N, D]
        on_table = {colour for colour, body in CUBE_BODIES.items() if body in env.unwrapped.cube_starts}
        asks = [("present" if c in on_table else "absent", f"touch the {c} cube") for c in CUBE_COLOURS]
        asks += [("unknown colour", "touch the orange cube"), ("empty", "")]
        for kind, instruction in asks:
            counts[kind][0] += refused(model, instruction, tokens)
            counts[kind][1] += 1
    report = {kind: {"refused": r, "asked": n, "rate": r / max(n, 1)} for kind, (r, n) in counts.items()}
    print(json.dumps(report, indent=1))
    for kind, (r, n) in counts.items():
        print(f"{kind:>15}: refused {r} of {n} ({100 * r / max(n, 1):.0f}%)")


if __name__ == "__main__":
    main()

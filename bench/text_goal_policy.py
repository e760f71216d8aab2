"""Does the goal policy read the language-goal predictor's goals better once it has seen them? (issue 31)

The language model's goal policy was trained on real goal frames; from an instruction it is given the
predictor's goal instead, a blurred average of the scenes the instruction can end in. This fine-tunes the
policy on a mix of hindsight goals (as ``jepa-mpc train-policy``) and predicted goals (from each episode's
first frame and instruction, what ``GoalImageMPC.set_goal_text`` plans toward; or, ``--goal_from now``, from
the sample's own frame), and scores the held-out episodes' first-action L1 (units of the action spread,
every frame) with the goal given as the true last frame, the predicted goal from the first frame, and from
the frame now, before and after. The fine-tuned model is written to ``--out`` for ``jepa-mpc eval``.

    python bench/text_goal_policy.py --checkpoint worldmodel/language_model/model.pt \\
        --data runs/language_model/data/lang-touch runs/language_model/data/lang-lift \\
               runs/language_model/data/lang-push runs/language_model/data/lang-place \\
        --steps 1000 --text_fraction 0.5 --out runs/text_policy/model.pt

Results: docs/benchmarks.md, "Goals in words".
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from worldmodel.checkpoint import read_checkpoint, save_world_model_checkpoint
from worldmodel.training.clips import split_episodes
from worldmodel.training.config import TrainGoalPolicyConfig
from worldmodel.training.episodes import open_episodes
from worldmodel.training.feature_cache import FeatureCache, cache_frozen_tokens, load_frozen_world_model
from worldmodel.training.train_goal_policy import WORLD_MODEL_ENTRIES, HindsightSamples, cloning_error

BATCH = 2048  # frames per predictor call when predicting the goals of every frame


class TextGoalSamples(HindsightSamples):
    """:class:`HindsightSamples` with the predicted goals: ``episode_goal`` ``[E, N, D]`` (from each episode's
    first frame; ``episode_of`` ``[F]`` maps a sample to its episode) and ``frame_now_goal`` ``[F, N, D]`` (from
    each sample's own frame)."""

    def __init__(self, cache: FeatureCache, episode_ids: list[int], tubelet: int, chunk: int, predictor) -> None:
        super().__init__(cache, episode_ids, tubelet, chunk)
        index_of_last = {
            cache.episodes[e]["offset"] + cache.episodes[e]["length"] - 1: i for i, e in enumerate(episode_ids)
        }
        self.episode_of = torch.tensor([index_of_last[int(end)] for end in self.ends], dtype=torch.long)  # [F]
        words = [predictor.split_words(cache.episodes[e]["task"]) for e in episode_ids]  # [E]
        firsts = torch.tensor([cache.episodes[e]["offset"] for e in episode_ids], dtype=torch.long)  # [E]
        self.episode_goal = self._predict(predictor, firsts, words)
        self.frame_now_goal = self._predict(predictor, self.rows, [words[i] for i in self.episode_of.tolist()])

    @torch.no_grad()
    def _predict(self, predictor, rows: Tensor, words: list[list[str]]) -> Tensor:
        goals = [
            predictor(self.tokens[rows[i : i + BATCH]], words[i : i + BATCH])[0] for i in range(0, len(rows), BATCH)
        ]
        return torch.cat(goals) if goals else torch.zeros(0, *self.tokens.shape[1:])


@torch.no_grad()
def first_action_l1(policy, samples: TextGoalSamples) -> dict[str, float]:
    """Held-out first-action L1 (spread units) with each kind of goal, and the zero action's."""
    policy.eval()
    target = samples.actions(samples.rows, samples.ends)[:, 0]  # [F, 7]
    goals = {
        "image": samples.tokens[samples.ends],
        "text, first frame": samples.episode_goal[samples.episode_of],
        "text, frame now": samples.frame_now_goal,
    }
    scores = {}
    for name, goal in goals.items():
        first = policy(samples.tokens[samples.rows], samples.states[samples.rows], goal)[:, 0]  # [F, 7]
        scores[name] = float(((first - target).abs() / policy.target_scale).mean())
    scores["zero action"] = float((target.abs() / policy.target_scale).mean())
    policy.train()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a language model (goal policy + language-goal predictor)")
    parser.add_argument("--data", nargs="+", required=True, help="the language datasets it was trained on")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--text_fraction", type=float, default=0.5, help="share of samples given a predicted goal")
    parser.add_argument("--goal_from", choices=("first_frame", "now"), default="first_frame")
    parser.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (cosine to 0)")
    parser.add_argument("--out", required=True, help="the fine-tuned model (.pt)")
    args = parser.parse_args()

    torch.set_num_threads(2)
    config = TrainGoalPolicyConfig()
    checkpoint = Path(args.checkpoint)
    source = open_episodes(args.data, config.data.camera, config.data.sample_fps, wrist_camera=config.data.wrist_camera)
    world_model = load_frozen_world_model(checkpoint, config.data)
    if world_model.goal_policy is None or world_model.language_goal is None:
        raise SystemExit(f"--checkpoint {checkpoint}: needs a goal policy and a language-goal predictor")
    cache = cache_frozen_tokens(source, world_model, checkpoint, config.data, "cpu")
    run = config.run
    train_ids, val_ids = split_episodes(
        len(cache.episodes), config.data.val_fraction, config.data.min_val_episodes, run.seed
    )
    tubelet, chunk = world_model.config.encoder.tubelet_size, world_model.goal_policy.config.chunk
    predictor = world_model.language_goal.eval()
    train = TextGoalSamples(cache, train_ids, tubelet, chunk, predictor)
    held_out = TextGoalSamples(cache, val_ids, tubelet, chunk, predictor)

    policy = copy.deepcopy(world_model.goal_policy).train()
    print("before:", {k: round(v, 4) for k, v in first_action_l1(policy, held_out).items()})
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(run.seed)
    for step in tqdm(range(args.steps), desc="fine-tune"):
        picks, goal_rows = train.draw(generator, run.batch_size, config.hindsight.final_goal_fraction)
        tokens, states, goals, target = train.batch(picks, goal_rows, "cpu")
        text = torch.rand(run.batch_size, generator=generator) < args.text_fraction  # [B]
        # The target is the chunk the demonstration took from the frame, whatever its goal: the episode's
        # last frame, which the predicted goal stands for, lies ahead of it too.
        predicted = (
            train.episode_goal[train.episode_of[picks]]
            if args.goal_from == "first_frame"
            else train.frame_now_goal[picks]
        )  # [B, N, D]
        goals = torch.where(text[:, None, None], predicted, goals)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        optimizer.zero_grad()
        cloning_error(policy, tokens, states, goals, target).mean().backward()
        optimizer.step()
    print("after: ", {k: round(v, 4) for k, v in first_action_l1(policy, held_out).items()})

    kept = {k: v for k, v in read_checkpoint(checkpoint).items() if k not in WORLD_MODEL_ENTRIES}
    save_world_model_checkpoint(
        args.out,
        world_model.config,
        world_model.encoder,
        world_model.predictor,
        extra=kept,
        goal_policy=policy,
        token_statistics=world_model.token_statistics,
    )
    print(f"fine-tuned model: {args.out} (jepa-mpc eval --checkpoint {args.out} --goal text ...)")


if __name__ == "__main__":
    main()

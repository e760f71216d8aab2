"""``jepa-mpc train-language-goal``: a language-goal predictor on a world model's frozen tokens
(:mod:`worldmodel.language_goal`).

    jepa-mpc train-language-goal --data data/lang-touch data/lang-place --object_words red green yellow \
        --checkpoint runs/lang/model.pt --out runs/lang_goal

Every episode's ``task`` (LeRobot's convention: the instruction it was recorded for) is its instruction.
The world model's encoder encodes every episode once (the feature cache of ``jepa-mpc train``,
:mod:`.feature_cache`); each step then draws frames of the training episodes and asks for the tokens of
their episode's **last frame** (what the instruction asked for) from the frame and the instruction: the
VL-JEPA objective (predict the target's embedding, never its pixels), the L1 distance of the planner's
energy. Words other than ``object_words`` are read as unknown with probability ``word_dropout``, so
that a phrasing never seen still reads as its object words.

The match head learns which instructions fit the scene: a ``mismatch_fraction`` of each batch pairs a
frame with another instruction. Where every episode says which words name something on its table
(``words_in_scene``, recorded by ``jepa-mpc collect`` for the language tasks), the labels are exact: half
the pairs read the episode's own instruction with one object word replaced by one naming nothing on the
table (label 0), half another episode's instruction, labelled 1 if everything it names is on the table.
Where some episode does not say, half read another episode's instruction naming other object words
(a cube or zone that may be absent; the head then learns how likely each named thing is present,
positive-unlabelled learning, Elkan & Noto 2008) and half the episode's own with its object words read as
unknown, both labelled 0. The refusal threshold stored with the model is the ``match_quantile`` of the
held-out episodes' fitting pairs' probabilities.

``OUT/model.pt`` is the input checkpoint, every entry kept (its goal policy, token statistics), with the
predictor and its config added; the training state, metrics and ``summary.json`` sit beside it, and
``--resume`` continues an interrupted run (:mod:`.loop`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from jepa_mpc_foundation.configuration import ConfigError, dataclass_to_dict
from worldmodel.checkpoint import save_language_goal
from worldmodel.config import LanguageGoalConfig
from worldmodel.language_goal import PAD, UNKNOWN, LanguageGoalPredictor, instruction_words
from worldmodel.text_model import UNKNOWN_WORD, PretrainedTextModel

from .clips import split_episodes
from .config import TrainLanguageGoalConfig
from .distributed import setup_distributed
from .encoder_checkpoint import file_digest
from .episodes import EpisodeSource, check_sample_fps
from .feature_cache import FeatureCache, cache_frozen_tokens, load_frozen_world_model
from .loop import Objective, train_loop
from .optimization import build_optimizer
from .run_summary import RunSummary
from .train_state import clear_run_folder, open_run_folder

MODEL_FILE = "model.pt"


@dataclass
class LanguageGoalValidation:
    goal_l1: float  # mean L1 per token between the predicted and the true last frame's tokens, from each first frame
    copy_l1: float  # the same for "the goal is the frame now": what goal_l1 must beat
    wrong_instruction_l1: float  # the predicted goal of another episode's instruction against this episode's
    match_threshold: float  # the match_quantile of the fitting pairs' probabilities
    mismatch_refused: float  # share of non-fitting pairs under the threshold (naming what is not on the table)
    episodes: int
    # share of other instructions naming only what is on the table that are refused (None: scenes not recorded)
    present_refused: float | None = None


@dataclass(kw_only=True)
class LanguageGoalTrainSummary(RunSummary):
    """The summary of a ``jepa-mpc train-language-goal`` run: the held-out scores and the words it read."""

    validation: LanguageGoalValidation | None
    vocabulary: list[str]
    cache_folder: str

    def result_lines(self) -> list[str]:
        v = self.validation
        if v is None:
            return [f"vocabulary: {len(self.vocabulary)} words"]
        if v.present_refused is None:
            refusals = f"{100 * v.mismatch_refused:.0f}% of held-out instructions naming other objects"
        else:
            refusals = (
                f"{100 * v.mismatch_refused:.0f}% of held-out instructions naming something not on the table, "
                f"{100 * v.present_refused:.0f}% of those naming only what is on it"
            )
        return [
            f"validation ({v.episodes} held-out episodes, from each first frame): goal L1 {v.goal_l1:.4f} against "
            f"{v.copy_l1:.4f} for the frame now and {v.wrong_instruction_l1:.4f} for another episode's instruction",
            f"refusal threshold {v.match_threshold:.3f}: refuses {refusals}; vocabulary: {len(self.vocabulary)} words",
        ]

    def product_line(self) -> str:
        return (
            f"world model with its language-goal predictor: {Path(self.out) / MODEL_FILE} "
            "(plan from words: jepa-mpc eval --checkpoint ... --goal_text '...')"
        )


class InstructionSamples:
    """Frames of a feature cache with their episode's instruction (ids of the training vocabulary's words, so
    that word dropout is a tensor operation) and last frame (the goal)."""

    def __init__(self, cache: FeatureCache, episode_ids: list[int], predictor: LanguageGoalPredictor) -> None:
        self.tokens = torch.from_numpy(np.array(cache.tokens, dtype=np.float32))  # [S, N, D]
        self.episode_ids = episode_ids
        texts = [cache.episodes[e]["task"] for e in episode_ids]
        L = predictor.config.max_words
        self.words = torch.zeros(len(texts), L, dtype=torch.long)  # [E, L]
        for i, text in enumerate(texts):
            ids = predictor.word_table_ids([predictor.split_words(text)])[0].cpu()
            self.words[i, : len(ids)] = ids
        self.spelling = ["", UNKNOWN_WORD, *predictor.config.vocabulary]  # word id -> word
        objects = torch.tensor([predictor.word_ids[w] for w in predictor.config.object_words], dtype=torch.long)
        self.is_object = torch.isin(self.words, objects)  # [E, L]
        signatures = [frozenset(w for w in instruction_words(t) if w in predictor.config.object_words) for t in texts]
        # other[i, j]: episode j's instruction names other object words than episode i's (a non-fitting pair)
        self.other = torch.tensor([[a != b for b in signatures] for a in signatures], dtype=torch.bool)  # [E, E]
        self.same_text = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.bool)  # [E, E]
        scenes = [set(cache.episodes[e].get("words_in_scene") or ()) for e in episode_ids]
        self.knows_scenes = bool(scenes) and all(scenes) and len(objects) > 0  # exact labels (module docstring)
        self.object_ids = objects  # [K]
        # absent[i, k]: object word k names nothing on episode i's table; fits[i, j]: all that episode j's
        # instruction names is on episode i's table
        self.absent = torch.tensor([[w not in s for w in predictor.config.object_words] for s in scenes]).reshape(
            len(scenes), len(objects)
        )  # [E, K]
        self.fits = torch.tensor([[b <= s for b in signatures] for s in scenes], dtype=torch.bool)  # [E, E]
        rows, owners, lasts, firsts = [], [], [], []
        for i, e in enumerate(episode_ids):
            entry = cache.episodes[e]
            first, last = entry["offset"], entry["offset"] + entry["length"] - 1
            rows.append(np.arange(first, last + 1))
            owners.append(np.full(last - first + 1, i))
            lasts.append(last)
            firsts.append(first)
        self.rows = torch.from_numpy(np.concatenate(rows)) if rows else torch.zeros(0, dtype=torch.long)  # [F]
        self.owners = torch.from_numpy(np.concatenate(owners)) if owners else torch.zeros(0, dtype=torch.long)  # [F]
        self.lasts = torch.tensor(lasts, dtype=torch.long)  # [E]
        self.firsts = torch.tensor(firsts, dtype=torch.long)  # [E]

    def __len__(self) -> int:
        return len(self.rows)

    def other_instruction(self, owners: Tensor, generator: torch.Generator) -> Tensor:
        """For each episode index in ``owners`` [B], another episode index whose instruction names other objects
        (itself where none does)."""
        weights = self.other[owners].float()  # [B, E]
        none = weights.sum(1) == 0
        weights[none, owners[none]] = 1.0
        return torch.multinomial(weights, 1, generator=generator)[:, 0]

    def with_absent_object(self, owners: Tensor, words: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Word ids ``[B, L]``: ``words`` of episodes ``owners`` [B] with one object word replaced by one naming
        nothing on that episode's table, and ``[B]`` whether a row could be (it names an object word and
        something is absent); rows that could not are returned as they were."""
        is_object = torch.isin(words, self.object_ids)  # [B, L]
        can = is_object.any(1) & self.absent[owners].any(1)  # [B]
        where = torch.multinomial(torch.where(can[:, None], is_object.float(), 1.0), 1, generator=generator)[:, 0]
        absent = torch.where(can[:, None], self.absent[owners].float(), 1.0)  # [B, K]
        replacement = self.object_ids[torch.multinomial(absent, 1, generator=generator)[:, 0]]  # [B]
        rows = torch.arange(len(words))
        out = words.clone()
        out[rows, where] = torch.where(can, replacement, words[rows, where])
        return out, can

    def words_of(self, owners: Tensor, dropout: float, generator: torch.Generator) -> Tensor:
        """Word ids ``[B, L]`` of episodes ``owners`` [B], other words than object words unknown with ``dropout``."""
        words = self.words[owners].clone()
        drop = (torch.rand(words.shape, generator=generator) < dropout) & (words != PAD) & ~self.is_object[owners]
        words[drop] = UNKNOWN
        return words

    def spell(self, ids: Tensor) -> list[list[str]]:
        """The words of word ids ``[B, L]``: what the predictor reads (an unknown word as ``UNKNOWN_WORD``)."""
        return [[self.spelling[i] for i in row if i != PAD] for row in ids.tolist()]


@torch.no_grad()
def validate(
    predictor: LanguageGoalPredictor, samples: InstructionSamples, quantile: float, device: torch.device
) -> LanguageGoalValidation:
    """Held-out scores from each held-out episode's first frame (module docstring)."""
    predictor.eval()
    generator = torch.Generator().manual_seed(0)
    owners = torch.arange(len(samples.episode_ids))
    now = samples.tokens[samples.firsts].to(device)  # [E, N, D]
    target = samples.tokens[samples.lasts].to(device)  # [E, N, D]
    goal, logits = predictor(now, samples.spell(samples.words[owners]))
    others = samples.other_instruction(owners, generator)
    wrong_goal, wrong_logits = predictor(now, samples.spell(samples.words[others]))
    fitting = torch.sigmoid(logits)
    threshold = float(torch.quantile(fitting, quantile)) if len(fitting) else 0.5

    def refused(logits: Tensor, pairs: Tensor) -> float:
        pairs = pairs.to(logits.device)
        return float((torch.sigmoid(logits[pairs]) < threshold).float().mean()) if pairs.any() else 0.0

    present_refused = None
    if samples.knows_scenes:
        absent, swapped = samples.with_absent_object(owners, samples.words[owners], generator)
        mismatch_refused = refused(predictor(now, samples.spell(absent))[1], swapped)
        present = samples.fits[owners, others] & samples.other[owners, others]  # other words, all on the table
        present_refused = refused(wrong_logits, present)
    else:
        mismatch_refused = refused(wrong_logits, samples.other[owners, others])
    predictor.train()
    return LanguageGoalValidation(
        goal_l1=float((goal - target).abs().mean()),
        copy_l1=float((now - target).abs().mean()),
        wrong_instruction_l1=float((wrong_goal - target).abs().mean()),
        match_threshold=threshold,
        mismatch_refused=mismatch_refused,
        episodes=len(owners),
        present_refused=present_refused,
    )


def _instructions(cache: FeatureCache) -> list[str]:
    """Every kept episode's task; ConfigError naming the episodes that have none."""
    missing = [e["name"] for e in cache.episodes if not e.get("task")]
    if missing:
        raise ConfigError(
            f"{len(missing)} episode(s) have no task (instruction), e.g. {missing[0]}: train-language-goal learns "
            "from each episode's instruction in the dataset's task field (jepa-mpc collect --task lang-... writes it)"
        )
    return [e["task"] for e in cache.episodes]


def train_language_goal(
    config: TrainLanguageGoalConfig,
    source: EpisodeSource,
    checkpoint: str | Path,
    out: str | Path,
    resume: bool = False,
    overwrite: bool = False,
) -> LanguageGoalTrainSummary:
    """Train a language-goal predictor on ``checkpoint``'s frozen tokens; write ``out/model.pt`` (the checkpoint
    with the predictor), ``out/train_state.pt``, metrics and ``out/summary.json``.

    Raises:
        RunFinished / ConfigError / CheckpointError: as :func:`.train_goal_policy.train_goal_policy`; ConfigError
            also when an episode has no task, or an ``object_words`` word appears in no instruction.
        EpisodeError / DatasetError: bad data (unless ``config.data.bad_episodes`` is ``skip``).
    """
    ctx = setup_distributed(config.run.device)
    try:
        return _train(ctx, config, source, Path(checkpoint), Path(out), resume, overwrite)
    finally:
        ctx.close()


def _train(ctx, config, source, checkpoint: Path, out: Path, resume: bool, overwrite: bool) -> LanguageGoalTrainSummary:
    run = config.run
    if ctx.world_size > 1:
        raise ConfigError("jepa-mpc train-language-goal runs in one process (a small network on cached tokens)")
    device = ctx.device
    check_sample_fps(source, config.data.sample_fps)
    if run.threads:
        torch.set_num_threads(run.threads)
    world_model = load_frozen_world_model(checkpoint, config.data)
    wm = world_model.config
    resume_key = {
        "config": dataclass_to_dict(config),
        "data": source.fingerprint(),
        "checkpoint": file_digest(checkpoint),
    }
    for name in ("val_every", "save_every", "device", "threads"):
        resume_key["config"]["run"].pop(name)
    resume_key["config"]["data"].pop("cache_dir")
    state = open_run_folder(out, resume_key, run.steps, resume, overwrite, MODEL_FILE)
    if overwrite:
        clear_run_folder(out, MODEL_FILE)

    cache = cache_frozen_tokens(source, world_model, checkpoint, config.data, device)
    texts = _instructions(cache)
    vocabulary = sorted({w for t in texts for w in instruction_words(t)})
    unknown = [w for w in config.object_words if w not in vocabulary]
    if unknown:
        raise ConfigError(f"--object_words {unknown} appear in no instruction of the data; name words the tasks use")
    train_ids, val_ids = split_episodes(
        len(cache.episodes), config.data.val_fraction, config.data.min_val_episodes, run.seed
    )

    text_model, text_tokenizer, text_weights = {}, {}, None
    if config.text_model:
        text_model, text_tokenizer, text_weights = PretrainedTextModel.read_folder(config.text_model)
    torch.manual_seed(run.seed)
    size = dataclass_to_dict(config.language)
    predictor = LanguageGoalPredictor(
        LanguageGoalConfig(
            encoder_dim=wm.encoder.dim,
            tokens_per_frame=wm.predictor.tokens_per_frame,
            vocabulary=tuple(vocabulary),
            object_words=config.object_words,
            text_model=text_model,
            text_tokenizer=text_tokenizer,
            **size,
        )
    )
    if text_weights is not None:
        predictor.text_model.model.load_state_dict(text_weights)  # frozen: the optimizer sees none of them
    train = InstructionSamples(cache, train_ids, predictor)
    held_out = InstructionSamples(cache, val_ids, predictor)
    predictor.to(device).train()
    optimizer = build_optimizer([predictor], config.optim)
    generator = torch.Generator().manual_seed(run.seed)

    def batch_loss(step: int) -> tuple[Tensor, dict[str, Tensor]]:
        generator.manual_seed(run.seed * 1_000_003 + step)  # batches are a function of the step (resume)
        picks = torch.randint(len(train), (run.batch_size,), generator=generator)
        owners = train.owners[picks]
        words = train.words_of(owners, config.word_dropout, generator)  # [B, L]
        mismatched = torch.rand(run.batch_size, generator=generator) < config.mismatch_fraction  # [B]
        if train.knows_scenes:
            others = torch.randint(len(train.episode_ids), (run.batch_size,), generator=generator)
        else:
            others = train.other_instruction(owners, generator)
        half = torch.rand(run.batch_size, generator=generator) < 0.5  # [B]
        if train.knows_scenes:
            # Exact labels: half the pairs read the own instruction naming something absent (0), half any
            # episode's instruction, fitting where all it names is on the table.
            absent, swapped = train.with_absent_object(owners, words, generator)
            replaced = half & swapped  # [B]
            negative = torch.where(replaced[:, None], absent, train.words_of(others, config.word_dropout, generator))
            labels = ~mismatched | (~replaced & train.fits[owners, others])  # [B]
        else:
            # Half the non-fitting pairs read the episode's own instruction with its object words unknown ("touch
            # the orange cube"), half another episode's naming other objects. A pair left fitting (no episode
            # names other objects) keeps label 1.
            replaced = half & train.is_object[owners].any(1)  # [B]
            blanked = words.clone()
            blanked[train.is_object[owners]] = UNKNOWN
            negative = torch.where(replaced[:, None], blanked, train.words_of(others, config.word_dropout, generator))
            labels = ~mismatched | (~replaced & ~train.other[owners, others])  # [B]
        # The goal is learned from the episode's own instruction only (another episode's may say the same).
        same_goal = ~mismatched | (~replaced & train.same_text[owners, others])  # [B]
        words = torch.where(mismatched[:, None], negative, words)
        tokens = train.tokens[train.rows[picks]].to(device)  # [B, N, D]
        target = train.tokens[train.lasts[owners]].to(device)  # [B, N, D]
        goal, logits = predictor(tokens, train.spell(words))
        goal_l1 = (goal - target).abs().mean((1, 2))[same_goal.to(device)].mean()  # [B] -> those pairs only
        match = F.binary_cross_entropy_with_logits(logits, labels.float().to(device))
        return goal_l1 + match, {"goal_l1": goal_l1, "match": match}

    validation: LanguageGoalValidation | None = None

    def held_out_metrics() -> tuple[dict[str, float], str]:
        nonlocal validation
        validation = validate(predictor, held_out, config.match_quantile, device)
        return (
            {k: float(v) for k, v in asdict(validation).items() if v is not None},
            f"goal L1 {validation.goal_l1:.4f} (frame now {validation.copy_l1:.4f}, another instruction "
            f"{validation.wrong_instruction_l1:.4f}), mismatches refused {100 * validation.mismatch_refused:.0f}%",
        )

    objective = Objective({"language_goal": predictor}, batch_loss, validate=held_out_metrics if val_ids else None)
    result = train_loop(
        ctx, objective, optimizer, run, config.optim, out, resume_key, state, desc="train-language-goal"
    )
    if result.end_step == run.steps:
        if validation is not None and config.match_quantile > 0:
            predictor.config.match_threshold = validation.match_threshold
        else:
            predictor.config.match_threshold = 0.0  # the match head refuses nothing
        save_language_goal(checkpoint, predictor.cpu(), out / MODEL_FILE, train_config=dataclass_to_dict(config))
    summary = LanguageGoalTrainSummary.of_run(
        ctx,
        result,
        out,
        run.steps,
        len(train_ids),
        len(val_ids),
        [vars(s) for s in cache.skipped],
        validation=validation,
        vocabulary=vocabulary,
        cache_folder=str(cache.folder),
    )
    summary.write()
    return summary

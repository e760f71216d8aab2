"""Goals in words: predict the goal's tokens from an instruction and the frame now (VL-JEPA's manner).

VL-JEPA (Chen et al., 2025, arXiv 2512.10942) predicts the *embedding* of the answer instead of
generating it: a predictor maps a visual input and a text query into the target encoder's space. For
a JEPA world model a goal is exactly such a point: the encoder's tokens of the goal frame. This module
is that predictor for the planner: from the instruction's words and the tokens of the frame now
(``[N, D]``, both views), it predicts the tokens ``[N, D]`` of the frame the instruction asks for, and the
planner plans toward them as toward a goal photo's (one-photo mode, ``planner.mpc.GoalImageMPC.set_goal_text``).
It is trained by ``jepa-mpc train-language-goal`` (:mod:`worldmodel.training.train_language_goal`)
against the encoded final frames of demonstrations of each instruction (the dataset's ``task``).

It also says whether an instruction fits the scene in view (a second head, trained with the
instructions of other episodes as non-matching pairs), so that "touch the yellow cube" with no yellow
cube in view can be refused instead of planned toward a guess (:meth:`LanguageGoalPredictor.predict_goal`,
where ``config.match_threshold`` is above 0; on the language scenes it was not reliable and the shipped
model's threshold is 0: docs/planner.md, "Goals in words"). An instruction naming none of the model's
object words is always refused.

Layout, nanoGPT-small: the words are embedded, either by a learned table over the training instructions'
vocabulary (index 0 padding, 1 an unknown word; each word with a learned position) or by a frozen Hugging
Face text model's last hidden states and a learned map (``config.text_model``, :mod:`worldmodel.text_model`);
the frame's tokens are projected to ``width`` (plus the words' mean); the words and the frame tokens go
through ``depth`` pre-norm transformer layers (``torch.nn.TransformerEncoderLayer``); the frame positions
give the goal as the tokens now plus a predicted change. The match logit is the best answer of any frame
token to a query made from the words (separate weights, a max over the tokens).
"""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from .config import LanguageGoalConfig
from .text_model import PretrainedTextModel

PAD, UNKNOWN = 0, 1  # word ids of the learned table; vocabulary word i has id i + 2
WORD = re.compile(r"[a-z]+")


class InstructionError(ValueError):
    """An instruction the model will not plan toward: empty, too long, naming nothing it knows, or not
    fitting the scene in view. The message is one line naming the instruction and what to say instead."""


def instruction_words(text: str) -> list[str]:
    """The words of an instruction: lower case, letters only (``"Put the RED cube!"`` -> put, the, red, cube)."""
    return WORD.findall(text.lower())


class LanguageGoalPredictor(nn.Module):
    """tokens now ``[B, N, D]``, instructions' words ``B x [words]`` -> goal tokens ``[B, N, D]`` and match
    logits ``[B]``."""

    def __init__(self, config: LanguageGoalConfig) -> None:
        super().__init__()
        self.config = config
        w, N = config.width, config.tokens_per_frame
        self.word_ids = {word: i + 2 for i, word in enumerate(config.vocabulary)}
        # The words in: a learned table (with positions), or a frozen text model's hidden states and a map.
        if config.text_model:
            self.text_model = PretrainedTextModel(config.text_model, config.text_tokenizer)
            self.word_embed = nn.Linear(self.text_model.hidden_size, w)
            self.register_parameter("word_pos", None)  # the text model's hidden states know the words' order
        else:
            self.text_model = None
            self.word_embed = nn.Embedding(len(config.vocabulary) + 2, w, padding_idx=PAD)
            self.word_pos = nn.Parameter(torch.zeros(config.max_words, w))
        # The goal: a transformer over the words and the frame's tokens.
        self.token_proj = nn.Linear(config.encoder_dim, w)
        self.token_pos = nn.Parameter(torch.zeros(N, w))
        layer = nn.TransformerEncoderLayer(
            w, config.num_heads, 4 * w, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        self.goal_head = nn.Linear(w, config.encoder_dim)
        # The match: whether any token of the frame answers the words' query (a max over the tokens: "is
        # there a yellow cube anywhere"). Its own weights, so that its loss does not pull on the goal's.
        if self.text_model is not None:
            self.match_embed = nn.Linear(self.text_model.hidden_size, w)
        else:
            self.match_embed = nn.Embedding(len(config.vocabulary) + 2, w, padding_idx=PAD)
        self.match_query = nn.Linear(w, w)
        self.match_key = nn.Sequential(nn.Linear(config.encoder_dim, w), nn.GELU(), nn.Linear(w, w))
        self.match_bias = nn.Parameter(torch.zeros(()))
        for p in (self.word_pos, self.token_pos):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)
        nn.init.zeros_(self.goal_head.weight)  # starts as "the goal is the frame now"
        nn.init.zeros_(self.goal_head.bias)

    def split_words(self, instruction: str) -> list[str]:
        """The words the model reads of ``instruction`` (:func:`instruction_words`).

        Raises:
            InstructionError: it has no word or more than ``max_words``.
        """
        words = instruction_words(instruction)
        if not words:
            raise InstructionError(
                f"the instruction {instruction!r} has no words: say what to do, e.g. 'touch the red cube'"
            )
        if len(words) > self.config.max_words:
            raise InstructionError(
                f"the instruction {instruction!r} has {len(words)} words; this model reads at most "
                f"{self.config.max_words}: say it shorter"
            )
        return words

    def word_table_ids(self, words: list[list[str]]) -> Tensor:
        """The learned table's word ids ``[B, L]`` (L the longest list; padding 0, unknown words 1)."""
        ids = torch.zeros(len(words), max(len(row) for row in words), dtype=torch.long)
        for i, row in enumerate(words):
            ids[i, : len(row)] = torch.tensor([self.word_ids.get(word, UNKNOWN) for word in row], dtype=torch.long)
        return ids.to(self.token_pos.device)

    def _read(self, words: list[list[str]]) -> tuple[Tensor, Tensor, Tensor]:
        """The words as the goal's and the match's inputs ``[B, L, w]`` (zero at padding) and padding ``[B, L]``."""
        if self.text_model is None:
            ids = self.word_table_ids(words)  # [B, L]
            return self.word_embed(ids), self.match_embed(ids), ids == PAD  # padding embeds to 0
        hidden, padding = self.text_model(words)  # [B, L, H], [B, L]
        kept = ~padding[..., None]
        return self.word_embed(hidden) * kept, self.match_embed(hidden) * kept, padding

    def forward(self, tokens: Tensor, words: list[list[str]]) -> tuple[Tensor, Tensor]:
        """Goal tokens ``[B, N, D]`` (the tokens now plus the predicted change) and match logits ``[B]`` from the
        tokens now ``[B, N, D]`` and each instruction's words (:meth:`split_words`; ``UNKNOWN_WORD`` for a word
        read as unknown: the table has no such word)."""
        N, D = self.config.tokens_per_frame, self.config.encoder_dim
        if tokens.shape[1:] != (N, D):
            raise ValueError(f"tokens must be [B, {N}, {D}], got {tuple(tokens.shape)}")
        B = tokens.shape[0]
        if len(words) != B or not all(1 <= len(row) <= self.config.max_words for row in words):
            raise ValueError(f"words must be {B} lists of 1..{self.config.max_words} words, got {words!r}")
        embedded, match_in, padding = self._read(words)  # [B, L, w], [B, L, w], [B, L]
        L = padding.shape[1]
        used = (~padding).sum(1, keepdim=True).clamp(min=1)  # [B, 1]
        # Every frame token also starts from the instruction's mean word embedding: the words reach the
        # frame from the first layer on, not only through attention.
        said = embedded.sum(1, keepdim=True) / used[..., None]  # [B, 1, w]
        frame = self.token_proj(tokens) + self.token_pos + said  # [B, N, w]
        if self.word_pos is not None:
            embedded = embedded + self.word_pos[:L]
        x = torch.cat([embedded, frame], dim=1)  # [B, L + N, w]
        padding = torch.cat([padding, torch.zeros(B, N, dtype=torch.bool, device=x.device)], 1)  # [B, L + N]
        x = self.norm(self.blocks(x, src_key_padding_mask=padding))  # [B, L + N, w]
        goal = tokens + self.goal_head(x[:, L:])  # [B, N, D]
        query = self.match_query(match_in.sum(1) / used)  # [B, w]
        scores = (self.match_key(tokens) @ query[:, :, None]).squeeze(-1)  # [B, N]
        match = scores.amax(1) / self.config.width**0.5 + self.match_bias  # [B]
        return goal, match

    def check_words(self, instruction: str) -> None:
        """Refuse an instruction that names nothing the model knows (none of ``config.object_words``).

        Raises:
            InstructionError: empty, too long, or naming no known object (the message lists the known words).
        """
        words = self.split_words(instruction)  # empty or too long
        objects = self.config.object_words
        if objects and not set(words) & set(objects):
            unknown = [w for w in words if w not in self.word_ids]
            said = f" ({', '.join(repr(w) for w in unknown)} unknown to it)" if unknown else ""
            raise InstructionError(
                f"the instruction {instruction!r} names nothing this model knows{said}: name a cube or zone by "
                f"{', '.join(objects)}"
            )

    @torch.no_grad()
    def predict_goal(self, instruction: str, tokens: Tensor) -> tuple[Tensor, float]:
        """The goal tokens ``[N, D]`` of ``instruction`` from one frame's tokens ``[N, D]``, and the probability
        that the instruction fits that frame's scene.

        Raises:
            InstructionError: :meth:`check_words`'s refusals, or a match probability below
                ``config.match_threshold`` (the named object is not in view).
        """
        self.check_words(instruction)
        goal, logit = self(tokens[None], [self.split_words(instruction)])
        probability = float(torch.sigmoid(logit[0]))
        if probability < self.config.match_threshold:
            raise InstructionError(
                f"the instruction {instruction!r} does not fit the scene in view (match {probability:.2f} < "
                f"{self.config.match_threshold:.2f}): name a cube and zone the camera sees"
            )
        return goal[0], probability

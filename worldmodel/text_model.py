"""A frozen Hugging Face text model that reads the instructions of the language-goal predictor.

The language-goal predictor (:mod:`worldmodel.language_goal`) reads words either through a table it learns
over its training instructions' vocabulary, or through a pretrained text model a user points to
(``jepa-mpc train-language-goal --text_model FOLDER``, any folder ``save_pretrained`` wrote, read from local
files only: nothing is downloaded). The text model is frozen; the predictor learns only the maps from its
last hidden states. The checkpoint holds the text model whole, as VL-JEPA's predictor holds its frozen text
encoder: its config (``config.to_dict()``), its tokenizer's files (as ``save_pretrained`` writes them, text
only: a fast tokenizer's ``tokenizer.json``) and its weights (in the predictor's state dict), so a model
trained on one machine plans on another without the folder.

    config, tokenizer_files, weights = PretrainedTextModel.read_folder("models/minilm")  # a local copy
    text = PretrainedTextModel(config, tokenizer_files)
    text.model.load_state_dict(weights)
    hidden, padding = text([["touch", "the", "red", "cube"]])   # [1, L, H], [1, L] (L: its tokens)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from .checkpoint import CheckpointError

UNKNOWN_WORD = "<unk>"  # a word read as unknown (the predictor's word dropout); never one of instruction_words'
CACHE_SIZE = 50_000  # instructions kept with their hidden states (templated instructions repeat)


def _transformers():
    """The ``transformers`` package, or a one-line CheckpointError saying how to install it."""
    try:
        import transformers
    except ImportError as error:
        raise CheckpointError(
            "this language-goal predictor reads words with a Hugging Face text model: install transformers "
            "(pip install 'jepa-mpc[text]')"
        ) from error
    return transformers


class PretrainedTextModel(nn.Module):
    """Word lists ``B x [words]`` -> a frozen text model's last hidden states ``[B, L, H]`` and padding ``[B, L]``
    (True where padding). L counts the tokenizer's tokens, special ones included."""

    def __init__(self, model_config: dict, tokenizer_files: dict[str, str]) -> None:
        """Raises CheckpointError: transformers is missing, or a tokenizer file name is a path."""
        super().__init__()
        transformers = _transformers()
        config = transformers.AutoConfig.for_model(**model_config)
        self.model = transformers.AutoModel.from_config(config)  # weights: the predictor's state dict
        self.model.requires_grad_(False)
        with tempfile.TemporaryDirectory() as folder:
            for name, text in tokenizer_files.items():
                if Path(name).name != name or name in ("", ".", ".."):
                    raise CheckpointError(f"the text model's tokenizer file name {name!r} is a path, not a file name")
                (Path(folder) / name).write_text(text, encoding="utf-8")
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.hidden_size = int(config.hidden_size)
        self._cache: dict[str, Tensor] = {}

    @staticmethod
    def read_folder(folder: str | Path) -> tuple[dict, dict[str, str], dict[str, Tensor]]:
        """A ``save_pretrained`` folder's model config, tokenizer files and weights, from local files only.

        Raises:
            CheckpointError: the folder is missing, holds no model or tokenizer, or its tokenizer has binary
                files (a slow, sentencepiece one: convert it to a fast ``tokenizer.json``).
        """
        transformers = _transformers()
        folder = Path(folder)
        if not folder.is_dir():
            raise CheckpointError(f"--text_model {folder}: no such folder; give one that save_pretrained wrote")
        try:
            model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(
                f"--text_model {folder}: not a Hugging Face model with its tokenizer ({first}); give a folder "
                "that model.save_pretrained and tokenizer.save_pretrained wrote"
            ) from error
        files = {}
        with tempfile.TemporaryDirectory() as saved:
            for path in tokenizer.save_pretrained(saved):
                path = Path(path)
                if not path.is_file():
                    continue
                try:
                    files[path.name] = path.read_text(encoding="utf-8")
                except UnicodeDecodeError as error:
                    raise CheckpointError(
                        f"--text_model {folder}: its tokenizer file {path.name} is binary; use a model with a fast "
                        "tokenizer (tokenizer.json), e.g. AutoTokenizer.from_pretrained(..., use_fast=True)"
                    ) from error
        return model.config.to_dict(), files, model.state_dict()

    def train(self, mode: bool = True) -> PretrainedTextModel:
        """The text model stays in eval mode (no dropout): it is frozen, and its hidden states are cached."""
        super().train(mode)
        self.model.eval()
        return self

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache.clear()  # new weights: new hidden states
        super()._load_from_state_dict(*args, **kwargs)

    def _apply(self, fn, *args, **kwargs):
        self._cache.clear()  # moved to another device or dtype
        return super()._apply(fn, *args, **kwargs)

    @torch.no_grad()
    def forward(self, words: list[list[str]]) -> tuple[Tensor, Tensor]:
        """Hidden states ``[B, L, H]`` (zero at padding) and padding ``[B, L]`` of the instructions' words;
        an ``UNKNOWN_WORD`` reads as the tokenizer's unknown token (dropped if it has none)."""
        unknown = self.tokenizer.unk_token or ""
        texts = [" ".join(unknown if w == UNKNOWN_WORD else w for w in row) for row in words]
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            if len(self._cache) + len(missing) > CACHE_SIZE:
                self._cache.clear()
            device = next(self.model.parameters()).device
            batch = self.tokenizer(missing, padding=True, return_tensors="pt").to(device)
            hidden = self.model(**batch).last_hidden_state.float()  # [M, L, H]
            for text, states, mask in zip(missing, hidden, batch["attention_mask"].bool()):
                self._cache[text] = states[mask]  # [L_i, H]
        rows = [self._cache[t] for t in texts]
        L = max(len(r) for r in rows)
        hidden = rows[0].new_zeros(len(rows), L, self.hidden_size)  # [B, L, H]
        padding = torch.ones(len(rows), L, dtype=torch.bool, device=hidden.device)  # [B, L]
        for i, row in enumerate(rows):
            hidden[i, : len(row)], padding[i, : len(row)] = row, False
        return hidden, padding

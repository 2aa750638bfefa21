"""The reading-comprehension network: the MiniLM encoder with an answerability head and a span head.

SQuAD 2.0 style. Input is one window: ``[CLS] question [SEP] passage text [SEP]``.
Output, per window:
- ``answerable``: one logit, from the [CLS] vector, that the window holds the answer;
- ``start``/``end``: a logit per token for where the answer begins and ends. Tokens
  that are not passage text (the question, the separators) are masked, except
  [CLS], where an unanswerable window points (the SQuAD 2.0 convention).

The shipped weights are what differs from the installed base model: low-rank
adapters on every linear layer of the encoder (peft LoRA) and the two heads.
`load_network` merges the adapters onto the base. Only training and the ONNX
export import this module (it imports torch); `ask()` runs the exported graph.
"""

from __future__ import annotations

from pathlib import Path

import torch

MASKED = -1e4  # a logit no real score reaches; finite so that softmax and ONNX stay well-defined
ADAPTER_FILE = "adapter_model.safetensors"
HEADS_FILE = "heads.safetensors"


class ReaderNetwork(torch.nn.Module):
    """A transformers encoder (BertModel) with the answerability and span heads."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.answerable = torch.nn.Linear(hidden, 1)
        self.span = torch.nn.Linear(hidden, 2)

    def forward(self, input_ids, attention_mask, token_type_ids, context_mask):
        """Logits for one batch of windows.

        Args:
            input_ids, attention_mask, token_type_ids: int64 [batch, tokens].
            context_mask: int64 [batch, tokens], 1 where a token is passage text or [CLS].

        Returns:
            (answerable [batch], start [batch, tokens], end [batch, tokens]).
        """
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        answerable = self.answerable(hidden[:, 0]).squeeze(-1)
        start, end = self.span(hidden).unbind(-1)
        masked = context_mask == 0
        return answerable, start.masked_fill(masked, MASKED), end.masked_fill(masked, MASKED)

    def heads_state(self) -> dict[str, torch.Tensor]:
        """The two heads' weights, by name, for heads.safetensors."""
        return {f"answerable.{k}": v for k, v in self.answerable.state_dict().items()} | {
            f"span.{k}": v for k, v in self.span.state_dict().items()
        }


def base_encoder(base_dir: Path):
    """The installed base model's transformer (no pooling), on the CPU, in fp32."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(base_dir), local_files_only=True)


def load_network(base_dir: Path, weights_dir: Path) -> ReaderNetwork:
    """The base encoder with the adapters in `weights_dir` merged onto it, and the trained heads.

    Raises:
        OSError, ValueError: a file of `weights_dir` is missing or unreadable (the caller names it).
    """
    from peft import PeftModel
    from safetensors.torch import load_file

    encoder = PeftModel.from_pretrained(base_encoder(base_dir), str(weights_dir)).merge_and_unload()
    network = ReaderNetwork(encoder)
    heads = load_file(str(weights_dir / HEADS_FILE))
    network.answerable.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("answerable.")})
    network.span.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items() if k.startswith("span.")})
    return network.eval()

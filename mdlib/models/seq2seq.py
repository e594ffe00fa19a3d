"""The reference response generator: GRU encoder-decoder with attention and copy.

Notebook 02 walks through one forward pass. With ``B`` examples, source length ``S``,
target length ``T``, vocabulary ``V``, embedding ``E`` and hidden size ``H``::

    src (B,S) --embed--> (B,S,E) --bi-GRU (H/2 per direction)--> enc (B,S,H), h0 (1,B,H)
    tgt_in (B,T) --embed--> (B,T,E) --GRU(h0)--> dec (B,T,H)
    attention  a = softmax(dec W enc^T)          (B,T,S)   (padding masked out)
    context    c = a enc                         (B,T,H)
    generate   p_vocab = softmax(W_o tanh(W_c [dec; c]))          (B,T,V)
    copy gate  g = sigmoid(w_g [dec; c; emb])                      (B,T,1)
    mixture    p = g p_vocab (+ zeros for the OOV slots)  +  (1-g) scatter(a -> src_ext)   (B,T,V+n_oov)
    loss       mean over real target tokens of -log p[tgt_out]

The decoder is Luong-style (attention after the GRU), so teacher forcing runs the GRU
over the whole target at once; decoding calls the same code with ``T = 1``. Copying
uses the extended vocabulary of :mod:`mdlib.models.batching`.

The model is *functional*: ``torch.func.functional_call(model, params, (batch,))`` with
``params = dict(model.named_parameters())`` gives the same loss, nothing updates a
parameter in place, and meta-learners differentiate through adaptation. On a GPU,
second-order MAML needs cuDNN off for the GRU (no double backward in cuDNN): wrap the
forward in :meth:`Seq2Seq.second_order` (or :func:`mdlib.meta.inner.second_order_guard`).

Two paths compute the same loss from the same parameters: ``nn.GRU`` (default: fused
kernels, packed sequences) and, inside :func:`mdlib.models.recurrence.unrolled`, the GRU
written as plain tensor ops plus a loss that builds only the targets' probabilities
(:meth:`Seq2Seq._target_logp`), which ``torch.func.vmap`` goes through: the task-batched
meta-step (:mod:`mdlib.meta.batched`) uses it. Decoding always takes the default path.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mdlib.errors import MdlibError
from mdlib.models.batching import ROW_FIELDS, Batch
from mdlib.models.contract import bind, register_generator  # noqa: F401  (bind: older imports)
from mdlib.models.recurrence import gru, is_unrolled

#: Sane bounds of a stored :class:`ModelConfig`: ``field -> (low, high)``. Far above any
#: model of this package, far below sizes that would exhaust memory.
LIMITS = {"vocab_size": (7, 1_000_000), "emb": (1, 4096), "hidden": (2, 8192)}


@dataclass(frozen=True)
class ModelConfig:
    """Size and behaviour of a :class:`Seq2Seq` (stored in checkpoints).

    Attributes:
        vocab_size: ``len(vocab)``.
        emb: embedding size ``E``.
        hidden: hidden size ``H`` (even: the encoder is bidirectional with ``H/2`` per direction).
        copy: use the copy (pointer) mechanism.
        dropout: dropout on embeddings and decoder states (0 keeps the model deterministic).
    """

    vocab_size: int
    emb: int = 64
    hidden: int = 128
    copy: bool = True
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, fields: dict, where: str = "config.model") -> "ModelConfig":
        """Check stored fields (types, :data:`LIMITS`) before anything is allocated.

        Raises:
            MdlibError: naming ``where`` and the field, and what was expected.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        if set(fields) != names:
            raise MdlibError(f"{where}: expected the fields {sorted(names)}, got {sorted(map(str, fields))}")
        for key, (low, high) in LIMITS.items():
            value = fields[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise MdlibError(f"{where}.{key}: expected a whole number in [{low}, {high}], got {value!r:.40}")
        if fields["hidden"] % 2:
            raise MdlibError(f"{where}.hidden: expected an even number (bidirectional encoder), "
                             f"got {fields['hidden']}")
        if not isinstance(fields["copy"], bool):
            raise MdlibError(f"{where}.copy: expected true or false, got {fields['copy']!r:.40}")
        dropout = fields["dropout"]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise MdlibError(f"{where}.dropout: expected a number in [0, 1), got {dropout!r:.40}")
        return cls(**fields)


@register_generator("gru")
class Seq2Seq(nn.Module):
    """GRU encoder-decoder with Luong attention and a pointer-generator copy mechanism.

    Meets the generator contract (:mod:`mdlib.models.contract`) as ``"gru"``.

    Args:
        config: a :class:`ModelConfig` (``vocab_size`` etc.).

    ``model(batch)`` returns the mean token NLL, a Tensor ().
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.hidden % 2:
            raise ValueError("hidden must be even (bidirectional encoder)")
        self.config = config
        V, E, H = config.vocab_size, config.emb, config.hidden
        self.embed = nn.Embedding(V, E, padding_idx=0)
        self.encoder = nn.GRU(E, H // 2, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(H, H)
        self.decoder = nn.GRU(E, H, batch_first=True)
        self.attn = nn.Linear(H, H, bias=False)
        self.combine = nn.Linear(2 * H, H)
        self.out = nn.Linear(H, V)
        self.gate = nn.Linear(2 * H + E, 1) if config.copy else None

    @staticmethod
    def second_order(device: torch.device | str | None = None):
        """Context manager for a forward that will be differentiated twice.

        On CUDA it turns cuDNN off (its GRU has no double backward); elsewhere a no-op.
        """
        if device is not None and torch.device(device).type == "cuda":
            return torch.backends.cudnn.flags(enabled=False)
        return contextlib.nullcontext()

    @classmethod
    def config_from_dict(cls, fields: dict, where: str = "config.model") -> ModelConfig:
        """The contract's configuration check: :meth:`ModelConfig.from_dict`."""
        return ModelConfig.from_dict(fields, where)

    def head_names(self) -> list[str]:
        """The output layer ``W_o`` (what ANIL adapts)."""
        return [n for n, _ in self.named_parameters() if n.startswith("out.")]

    @torch.no_grad()
    def read_as_unk(self, ids: torch.Tensor, unk_id: int) -> None:
        """Copy the input embedding of ``<unk>`` into the rows ``ids`` (LongTensor (n,))."""
        weight = self.embed.weight
        weight[ids.to(weight.device)] = weight[unk_id].clone()

    def start(self, batch: Batch):
        """Decoding state: ``(h (1,B,H), enc (B,S,H), src_mask, src_ext, n_oov)``."""
        enc, h = self.encode(batch.src, batch.src_mask)
        return h, enc, batch.src_mask, batch.src_ext, batch.n_oov

    def step(self, tokens: torch.Tensor, state) -> tuple[torch.Tensor, tuple]:
        """``tokens`` (B, 1) -> log-probabilities of the next token (B, V + n_oov) and the new state."""
        h, enc, mask, ext, n_oov = state
        logp, h, _ = self.decode(tokens, h, enc, mask, ext, n_oov)
        return logp[:, -1], (h, enc, mask, ext, n_oov)

    @staticmethod
    def select(state, rows: torch.Tensor) -> tuple:
        """The decoding state of ``rows`` (LongTensor (R,))."""
        h, enc, mask, ext, n_oov = state
        return h[:, rows], enc[rows], mask[rows], ext[rows], n_oov

    def n_parameters(self) -> int:
        """Number of trainable numbers."""
        return sum(p.numel() for p in self.parameters())

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.config.dropout, self.training) if self.config.dropout else x

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor,
               live: tuple[int, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode the source.

        Args:
            src: LongTensor (B, S) vocabulary ids.
            src_mask: BoolTensor (B, S), True at real tokens (at least one per row).
            live: rows that can be real per position (``Batch.live_src``; unrolled path only).

        Returns:
            ``enc`` FloatTensor (B, S, H) (zeros at padding) and ``h0`` FloatTensor (1, B, H).
        """
        emb = self._drop(self.embed(src))
        if is_unrolled():
            g = self.encoder
            zeros = emb.new_zeros(src.shape[0], self.config.hidden // 2)
            fwd, h_f = gru(emb, g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0, zeros, src_mask,
                           live=live)
            bwd, h_b = gru(emb, g.weight_ih_l0_reverse, g.weight_hh_l0_reverse, g.bias_ih_l0_reverse,
                           g.bias_hh_l0_reverse, zeros, src_mask, reverse=True, live=live)
            h0 = torch.tanh(self.bridge(torch.cat([h_f, h_b], dim=-1))).unsqueeze(0)
            return torch.cat([fwd, bwd], dim=-1), h0
        lengths = src_mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, h_n = self.encoder(packed)
        enc, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        h0 = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], dim=-1))).unsqueeze(0)
        return enc, h0

    def _step_features(self, tgt_in: torch.Tensor, h: torch.Tensor, enc: torch.Tensor, src_mask: torch.Tensor,
                       live: tuple[int, ...] | None = None):
        """Decoder GRU, attention and output layer: everything before the output distribution.

        ``live``: rows that can be real per target position (``Batch.live_tgt``; unrolled path only).

        Returns:
            ``(logits (B,T,V), g (B,T,1) copy gate or None, attn (B,T,S), h_new (1,B,H))``.
        """
        V = self.config.vocab_size
        tgt_in = tgt_in.masked_fill(tgt_in >= V, 1)  # <unk> = 1
        emb = self._drop(self.embed(tgt_in))
        if is_unrolled():
            d = self.decoder
            dec, h_last = gru(emb, d.weight_ih_l0, d.weight_hh_l0, d.bias_ih_l0, d.bias_hh_l0, h[0], live=live)
            h_new = h_last.unsqueeze(0)
        else:
            dec, h_new = self.decoder(emb, h)
        dec = self._drop(dec)
        scores = torch.bmm(dec, self.attn(enc).transpose(1, 2))
        scores = scores.masked_fill(~src_mask.unsqueeze(1), -1e9)
        attn = torch.softmax(scores, dim=-1)
        ctx = torch.bmm(attn, enc)
        logits = self.out(torch.tanh(self.combine(torch.cat([dec, ctx], dim=-1))))
        g = None if self.gate is None else torch.sigmoid(self.gate(torch.cat([dec, ctx, emb], dim=-1)))
        return logits, g, attn, h_new

    def decode(self, tgt_in: torch.Tensor, h: torch.Tensor, enc: torch.Tensor, src_mask: torch.Tensor,
               src_ext: torch.Tensor, n_oov: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities of the next tokens given the previous ones (teacher forcing).

        Args:
            tgt_in: LongTensor (B, T) previous tokens; extended ids ``>= V`` are read as ``<unk>``.
            h: FloatTensor (1, B, H) decoder state before the first of them.
            enc: FloatTensor (B, S, H); src_mask: BoolTensor (B, S); src_ext: LongTensor (B, S).
            n_oov: width of the extended vocabulary.

        Returns:
            ``logp`` FloatTensor (B, T, V + n_oov), the new state (1, B, H), and the attention (B, T, S).
        """
        logits, g, attn, h_new = self._step_features(tgt_in, h, enc, src_mask)
        if g is None:
            logp = torch.log_softmax(logits, dim=-1)
            if n_oov:
                logp = torch.cat([logp, logp.new_full((*logp.shape[:2], n_oov), -1e9)], dim=-1)
            return logp, h_new, attn
        p_vocab = g * torch.softmax(logits, dim=-1)
        if n_oov:
            p_vocab = torch.cat([p_vocab, p_vocab.new_zeros((*p_vocab.shape[:2], n_oov))], dim=-1)
        index = src_ext.unsqueeze(1).expand(-1, tgt_in.shape[1], -1)
        p = p_vocab.scatter_add(2, index, (1 - g) * attn)
        return torch.log(p.clamp_min(1e-12)), h_new, attn

    def _target_logp(self, batch: Batch, h0: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
        """``log p(tgt_out)`` of :meth:`decode` without building the (B, T, V + n_oov) distribution.

        Only the targets' probabilities are needed for the loss:
        ``p[y] = g softmax(logits)[y] + (1 - g) sum_s attn[s] [src_ext[s] = y]``, with the
        softmax term from one log-sum-exp and a gather (0 when ``y`` is an OOV id).

        Returns:
            FloatTensor (B, T).
        """
        V = self.config.vocab_size
        logits, g, attn, _ = self._step_features(batch.tgt_in, h0, enc, batch.src_mask, batch.live_tgt)
        y = batch.tgt_out
        in_vocab = y < V
        logit_y = logits.gather(2, y.clamp(max=V - 1).unsqueeze(2)).squeeze(2)
        logp_vocab = logit_y - torch.logsumexp(logits, dim=-1)
        if g is None:  # an OOV target is unreachable without copy: -1e9, as in decode()
            return torch.where(in_vocab, logp_vocab, torch.full_like(logp_vocab, -1e9))
        copy = (attn * (batch.src_ext.unsqueeze(1) == y.unsqueeze(2))).sum(-1)
        p = g.squeeze(2) * torch.where(in_vocab, logp_vocab.exp(), torch.zeros_like(logp_vocab))
        p = p + (1 - g.squeeze(2)) * copy
        return torch.log(p.clamp_min(1e-12))

    def token_nll(self, batch: Batch) -> torch.Tensor:
        """FloatTensor (B, T): NLL of each target token, 0 at padding.

        Inside :func:`mdlib.models.recurrence.unrolled` (the batched engine) the
        recurrences are plain tensor ops and only the targets' probabilities are built
        (:meth:`_target_logp`); the loss is the same. (With ``batch.tgt_order`` set, the
        rows come back in that order.)
        """
        if is_unrolled():
            enc, h0 = self.encode(batch.src, batch.src_mask, batch.live_src)
            if batch.tgt_order is not None:  # rows by target length for the decoder (see Batch)
                o = batch.tgt_order
                enc, h0 = enc[o], h0[:, o]
                batch = replace(batch, **{f: getattr(batch, f)[o] for f in ROW_FIELDS})
            return -self._target_logp(batch, h0, enc) * batch.tgt_mask
        enc, h0 = self.encode(batch.src, batch.src_mask)
        logp, _, _ = self.decode(batch.tgt_in, h0, enc, batch.src_mask, batch.src_ext, batch.n_oov)
        nll = -logp.gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2)
        return nll * batch.tgt_mask

    def forward(self, batch: Batch, reduction: str = "mean") -> torch.Tensor:
        """NLL of the responses.

        Args:
            batch: a :class:`~mdlib.models.batching.Batch`.
            reduction: ``"mean"`` (per real target token, Tensor ()), ``"sum"`` (Tensor ())
                or ``"none"`` (Tensor (B, T), zeros at padding).
        """
        nll = self.token_nll(batch)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        return nll.sum() / batch.tgt_mask.sum().clamp(min=1)


def build_model(vocab_size: int, emb: int = 64, hidden: int = 128, copy: bool = True,
                dropout: float = 0.0, device: torch.device | str | None = None) -> Seq2Seq:
    """A :class:`Seq2Seq` on ``device`` (default: CPU)."""
    model = Seq2Seq(ModelConfig(vocab_size=vocab_size, emb=emb, hidden=hidden, copy=copy, dropout=dropout))
    return model.to(device) if device is not None else model

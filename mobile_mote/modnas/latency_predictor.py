"""A differentiable latency predictor conditioned on the device: L(w, d) -> latency in reference units.

``w`` is a cell's (6, 5) one-hot operation matrix (or a straight-through sample of it), ``d`` the device
embedding from ``devices``; the target is the cell's latency normalised by the device's reference range,
so one network serves every device and, given a new device's 10 reference latencies, predicts it
zero-shot. HELP meta-learns this predictor with a few-shot adaptation step; here it is trained by plain
regression on the training devices' full tables (every cell), which the zero-shot test measures.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mobile_mote.search_spaces.nb201 import OPS

from .devices import REFERENCE_ARCHS, DeviceLatencies


def one_hot_cells(space) -> np.ndarray:
    """(size, 6, 5) float32 one-hot operation matrices of every cell, by NB201 index."""
    col = {op: k for k, op in enumerate(OPS)}
    out = np.zeros((space.size(), 6, len(OPS)), dtype=np.float32)
    for i in range(space.size()):
        for e, op in enumerate(space.arch_at(i)):
            out[i, e, col[op]] = 1.0
    return out


class LatencyPredictor(nn.Module):
    def __init__(self, embed_dim: int = len(REFERENCE_ARCHS), hidden: int = 100, n_edges: int = 6, n_ops: int = len(OPS)):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_edges * n_ops + embed_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, w: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``w`` (B, 6, 5), ``d`` (B, embed_dim) -> (B,) predicted normalised latency."""
        return self.net(torch.cat([w.reshape(len(w), -1), d], dim=-1)).squeeze(-1)


@dataclass
class PredictorConfig:
    epochs: int = 30
    batch_size: int = 512
    lr: float = 1e-3
    hidden: int = 100
    cells: int = 0  # 0: every (device, cell) pair each epoch; n > 0: n x devices random pairs per epoch (tests)
    seed: int = 0


def train_latency_predictor(lat: DeviceLatencies, devices, cfg: PredictorConfig = PredictorConfig(),
                            onehots: np.ndarray | None = None, progress: bool = False) -> tuple[LatencyPredictor, dict]:
    """Regress normalised latency on every cell of ``devices``; returns the predictor and its fit record."""
    torch.manual_seed(cfg.seed)
    onehots = one_hot_cells(lat.space) if onehots is None else onehots
    W = torch.from_numpy(onehots)
    D = torch.from_numpy(np.stack([lat.embedding(d) for d in devices]))
    Y = torch.from_numpy(np.stack([lat.normalised(d) for d in devices]).astype(np.float32))  # (devices, cells)
    n_dev, n_cells = Y.shape
    model = LatencyPredictor(D.shape[1], cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    g = torch.Generator().manual_seed(cfg.seed)
    losses = []
    epochs = range(cfg.epochs)
    if progress:
        from tqdm.auto import tqdm
        epochs = tqdm(epochs, desc="latency predictor", unit="epoch")
    for _ in epochs:
        perm = torch.randperm(n_dev * n_cells, generator=g)
        if cfg.cells:
            perm = perm[:cfg.cells * n_dev]
        total = 0.0
        for s in range(0, len(perm), cfg.batch_size):
            b = perm[s:s + cfg.batch_size]
            dev, cell = b // n_cells, b % n_cells
            loss = nn.functional.mse_loss(model(W[cell], D[dev]), Y[dev, cell])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        sched.step()
        losses.append(total / len(perm))
    model.eval()
    return model, {"config": asdict(cfg), "devices": list(devices), "train_mse": losses}


@torch.no_grad()
def evaluate_predictor(model: LatencyPredictor, lat: DeviceLatencies, devices, onehots: np.ndarray | None = None) -> dict:
    """Per device: Spearman rho and Kendall tau of predicted vs true latency over every cell, and the
    mean and median absolute percentage error after mapping the prediction back to ms through the reference range."""
    from scipy.stats import kendalltau, spearmanr
    onehots = one_hot_cells(lat.space) if onehots is None else onehots
    W = torch.from_numpy(onehots)
    out = {}
    for dev in devices:
        d = torch.from_numpy(lat.embedding(dev)).expand(len(W), -1)
        pred = model(W, d).numpy().astype(np.float64)
        ref = lat.reference_ms(dev)
        pred_ms = pred * (ref.max() - ref.min()) + ref.min()
        true = lat.ms[dev]
        ape = np.abs(pred_ms - true) / true * 100
        out[dev] = {"spearman": float(spearmanr(pred, true)[0]), "kendall": float(kendalltau(pred, true)[0]),
                    "mape_pct": float(ape.mean()), "median_ape_pct": float(np.median(ape))}
    return out

"""Train a reduced architecture briefly on a reduced data set, all tensors on one device.

No DataLoader and no host copies: the whole data set is one tensor on the training
device, each epoch is a seeded permutation of its indices. The loop records what the
MOTE terms need: the mean training loss l_e and the duration t_e of every epoch, and
the initial and trained weights for the loss-landscape walk.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class TrainRun:
    losses: list[float]  # mean training loss of each epoch, l_e
    seconds: list[float]  # wall-clock duration of each epoch, t_e
    init_state: dict[str, torch.Tensor] = field(repr=False)
    final_state: dict[str, torch.Tensor] = field(repr=False)
    steps: int = 0
    samples_per_epoch: int = 0
    captured: bool = False  # whether a CUDA graph ran the full batches
    capture_seconds: float = 0.0  # time spent capturing it, kept out of ``seconds``


def _sync(device: torch.device) -> None:
    """Wait for this thread's stream only: concurrent workers (mobile_mote.concurrent) each have one."""
    if device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()


_LOCAL = threading.local()


def _side_stream(device: torch.device):
    """This thread's side stream on ``device``, made once and reused (never one per call from the shared pool)."""
    streams = getattr(_LOCAL, "streams", None)
    if streams is None:
        streams = _LOCAL.streams = {}
    key = torch.device(device).index if torch.device(device).index is not None else torch.cuda.current_device()
    if key not in streams:
        streams[key] = torch.cuda.Stream(device)
    return streams[key]


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _eager_step(model, opt, xb, yb, amp: bool, keep_grads: bool = False) -> torch.Tensor:
    with _autocast(xb.device, amp):
        loss = F.cross_entropy(model(xb), yb)
    if keep_grads:  # gradients a CUDA graph writes into: zeroed in place, never replaced
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.zero_()
    else:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


class StaticStep:
    """A training step at one fixed batch shape, reading its batch from static buffers.

    On CUDA, after ``WARMUP`` eager steps on a side stream (allocator and cuDNN settle there, as
    PyTorch's CUDA-graph recipe asks), the whole step (forward, backward, Adam with
    ``capturable=True``) is captured once in a CUDA graph and replayed for every later full batch:
    one launch instead of hundreds. Every batch still trains exactly once, in the same order: the
    warm-up steps are real steps, and the capture's own batch is replayed right after capturing. The
    ragged last batch of an epoch (another shape) runs eagerly on the same parameters, gradients and
    optimizer state, so the epoch's semantics are the eager loop's. Elsewhere (CPU) the same buffers
    run eagerly, which is what the CPU tests compare with the eager loop.
    """

    WARMUP = 3

    def __init__(self, model, opt, x: torch.Tensor, y: torch.Tensor, batch_size: int, amp: bool):
        self.model, self.opt, self.x, self.y, self.amp = model, opt, x, y, amp
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        self.static_x = torch.empty((batch_size, *x.shape[1:]), dtype=x.dtype, device=x.device).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.static_y = torch.empty((batch_size,), dtype=y.dtype, device=y.device)
        self.capture = x.device.type == "cuda"
        self.graph = None
        self.static_loss = None
        self.calls = 0
        self.capture_seconds = 0.0  # the capture's wall time (not a training step): kept out of t_e

    @property
    def captured(self) -> bool:
        return self.graph is not None

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        self.static_x.copy_(self.x.index_select(0, idx))
        self.static_y.copy_(self.y.index_select(0, idx))
        self.calls += 1
        if self.graph is not None:
            self.graph.replay()
            return self.static_loss
        if not self.capture:
            return _eager_step(self.model, self.opt, self.static_x, self.static_y, self.amp)
        if self.calls <= self.WARMUP:
            side = _side_stream(self.x.device)
            side.wait_stream(torch.cuda.current_stream(self.x.device))
            with torch.cuda.stream(side):
                loss = _eager_step(self.model, self.opt, self.static_x, self.static_y, self.amp)
            torch.cuda.current_stream(self.x.device).wait_stream(side)
            return loss
        graph = torch.cuda.CUDAGraph()
        self.opt.zero_grad(set_to_none=True)  # the captured backward allocates the gradients it writes
        dev = self.x.device
        current = torch.cuda.current_stream(dev)
        _sync(dev)
        t0 = time.perf_counter()
        # capture on this thread's stream, or on its side stream: never on the default stream. One capture
        # per process at a time (mobile_mote.concurrent refuses step=graph with several workers).
        stream = current if current != torch.cuda.default_stream(dev) else _side_stream(dev)
        stream.wait_stream(current)
        with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp, cache_enabled=False):
                loss = F.cross_entropy(self.model(self.static_x), self.static_y)
            loss.backward()
            self.opt.step()
        current.wait_stream(stream)
        _sync(dev)
        self.capture_seconds += time.perf_counter() - t0
        self.graph, self.static_loss = graph, loss
        graph.replay()  # capturing ran nothing: this batch trains now
        return loss


STEPS = ("eager", "graph")


def train_epochs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
                 generator: torch.Generator, amp: bool = False, drop_last: bool = False,
                 step: str = "eager") -> TrainRun:
    """Adam, cross-entropy, no augmentation; batch order from ``generator`` alone.

    ``step="graph"``: full batches go through a ``StaticStep`` (a CUDA graph on CUDA, the same
    static-shape step eagerly elsewhere); ``"eager"``: every batch eagerly (the reference loop). The
    capture itself is timed and left out of the epoch's seconds (``TrainRun.capture_seconds``); the
    warm-up steps before it are real training steps and stay in."""
    if step not in STEPS:
        raise ValueError(f"step {step!r}; accepted: {', '.join(STEPS)}")
    device = x.device
    model.train()
    init = _clone_state(model)
    graph = step == "graph"
    opt = torch.optim.Adam(model.parameters(), lr=lr, capturable=graph and device.type == "cuda")
    static = StaticStep(model, opt, x, y, batch_size, amp) if graph else None
    n = x.shape[0]
    losses, seconds, steps, capture_total = [], [], 0, 0.0
    for _ in range(epochs):
        _sync(device)
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=generator, device=generator.device).to(device)
        total = torch.zeros((), device=device)
        seen = 0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            if static is not None and len(idx) == batch_size:
                loss = static(idx)
            else:
                loss = _eager_step(model, opt, x[idx], y[idx], amp, keep_grads=static is not None and static.captured)
            total += loss.detach().float() * len(idx)
            seen += len(idx)
            steps += 1
        mean = (total / max(seen, 1)).item()  # also a sync point: the epoch's work is done
        capture = 0.0
        if static is not None:  # the capture (once, in the first epoch) is no training: out of t_e
            capture, static.capture_seconds = static.capture_seconds, 0.0
            capture_total += capture
        seconds.append(time.perf_counter() - t0 - capture)
        losses.append(mean)
    return TrainRun(losses, seconds, init, _clone_state(model), steps, n, bool(static is not None and static.captured),
                    capture_total)


@torch.no_grad()
def dataset_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, amp: bool = False) -> float:
    """Mean cross-entropy over the whole set, in a fixed order, BN on batch statistics."""
    device = x.device
    total = torch.zeros((), device=device, dtype=torch.float64)
    for start in range(0, x.shape[0], batch_size):
        with _autocast(device, amp):
            out = model(x[start:start + batch_size])
        total += F.cross_entropy(out.float(), y[start:start + batch_size], reduction="sum").double()
    return (total / x.shape[0]).item()


def interpolate_(model: nn.Module, init: dict, final: dict, alpha: float) -> None:
    """Load theta = alpha * init + (1 - alpha) * final into the floating-point tensors of ``model``.

    Buffers (BN running statistics) are taken from the trained state: they are not used
    by ``dataset_loss`` (which runs BN on batch statistics) but keep the module consistent.
    """
    params = {k for k, _ in model.named_parameters()}
    for k, v in model.state_dict().items():
        if k in params:
            v.copy_(torch.lerp(final[k].float(), init[k].float(), alpha).to(v.dtype))
        else:
            v.copy_(final[k])


def landscape_losses(model: nn.Module, run: TrainRun, x: torch.Tensor, y: torch.Tensor, points: int,
                     batch_size: int, mode: str = "eval", lr: float = 1e-3, generator: torch.Generator | None = None,
                     amp: bool = False) -> list[float]:
    """J(theta_g) for g = 0..G with theta_g = (g/G) theta_init + (1 - g/G) theta_trained.

    mode ``eval`` (the paper): J is the training-set cross-entropy at theta_g, with BatchNorm
    in training mode (batch statistics) because no running statistics exist for weights that
    were never trained; the running buffers are restored from the trained state after each point.
    mode ``train_epoch`` (the official code): one training epoch starting from theta_g, J its mean loss.
    """
    out = []
    for g in range(points + 1):
        interpolate_(model, run.init_state, run.final_state, g / points)
        if mode == "eval":
            model.train()
            out.append(dataset_loss(model, x, y, batch_size, amp))
        elif mode == "train_epoch":
            out.append(train_epochs(model, x, y, 1, batch_size, lr, generator, amp).losses[0])
        else:
            raise ValueError(f"landscape mode {mode!r}; accepted: eval, train_epoch")
    model.load_state_dict(run.final_state)
    return out

"""MOTE (the paper's training-based estimate) and the two baselines that share its training run.

One run trains the reduced architecture E epochs on the reduced data (proxy_train), then:

* landscape term  L = sum_{g=0..G} J(theta_g),  theta_g = (g/G) theta_init + (1 - g/G) theta_trained
* speed term      S = sum_e l_e / t_e
* MOTE            = f(L) + f(S)   (lower is better; the record's score is -MOTE)

``t_e`` is the epoch's wall-clock seconds (``time="wall"``, the paper) or a deterministic cost,
3 x MACs(reduced) x images / 1e9 GMAC (``time="cost"``), so that a score does not depend on the
machine's load or on which GPU ran it. The official code's variant (landscape from one training
epoch at each theta_g, reciprocal transform) is the ``official`` profile.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .base import PROFILES, Estimator, build_seeded, seeded_generator  # noqa: F401  (PROFILES: re-exported)
from .options import choice, flag, positive, whole
from .registry import register_estimator
from .transforms import BOXCOX_PRESETS, TRANSFORMS, BoxCoxParams, fit_boxcox_params, mote_value, score_from_mote


def speed_term(losses, seconds) -> float:
    """S = sum_e l_e / t_e."""
    return float(np.sum(np.asarray(losses, dtype=np.float64) / np.asarray(seconds, dtype=np.float64)))


def landscape_term(losses) -> float:
    """L = sum_g J(theta_g)."""
    return float(np.sum(np.asarray(losses, dtype=np.float64)))


@dataclass
class TrainingConfig:
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    points: int = 10  # G: the landscape walk has G + 1 points
    landscape: str = "eval"  # "eval" (the paper) | "train_epoch" (the official code)
    time: str = "wall"  # "wall" (the paper) | "cost" (deterministic)
    transform: str = "box-cox"  # none | log | reciprocal | box-cox
    boxcox: str = "nb201"  # a preset's constants; population tools refit ("fit") and rescore
    images_per_class: int = 0  # 0: every image of the reduced data set
    amp: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 elsewhere | "on" | "off"
    channels_last: str = "auto"  # "auto": on CUDA only
    reduced: bool = True  # train the reduced architecture (the paper); False trains the full one
    # how a full batch's step is launched: "eager", or "graph" (one CUDA graph per candidate, replayed;
    # the same static-shape step eagerly on CPU). In the config hash when "graph": capturable Adam
    # differs from plain Adam in the last bits, and wall time sees the warm-up steps on a side stream.
    step: str = "eager"


class _TrainingEstimator(Estimator):
    Config = TrainingConfig
    needs_landscape = True
    thread_safe = True  # the global RNG only in build_seeded (locked); batch order from a seeded generator
    # The settings of the training run itself, which the search's evaluation stage reuses.
    evaluation_keys = ("images_per_class", "batch_size", "lr", "amp", "channels_last", "reduced")
    OPTIONS = {
        "epochs": whole(1), "batch_size": whole(1), "lr": positive(), "points": whole(0),
        "landscape": choice("eval", "train_epoch"), "time": choice("wall", "cost"), "transform": choice(*TRANSFORMS),
        "boxcox": choice("fit", *BOXCOX_PRESETS), "images_per_class": whole(0),
        "amp": choice("auto", "on", "off"), "channels_last": choice("auto", "on", "off"), "reduced": flag(),
        "step": choice("eager", "graph"),
    }

    def config_dict(self) -> dict:
        d = super().config_dict()
        if d.get("step") == "eager":  # the reference loop: hashes made before ``step`` existed stay valid
            d.pop("step")
        return d

    def __init__(self, **config):
        super().__init__(**config)
        c = self.config
        self._cache: dict = {}
        self._lock = threading.Lock()
        self.boxcox_params: BoxCoxParams | None = BOXCOX_PRESETS.get(c.boxcox)

    def prepare(self, data, device="auto") -> None:
        from ..devices import resolve_device
        self._tensors(data, resolve_device(device))

    def _tensors(self, data, device):
        with self._lock:
            return self._tensors_locked(data, device)

    def _tensors_locked(self, data, device):
        import torch
        key = (id(data), str(device), self.config.images_per_class)
        if key not in self._cache:
            self._cache.clear()  # one data set at a time: never hold two copies on a GPU
            d = data.subset(self.config.images_per_class) if self.config.images_per_class else data
            x, y = d.tensors(device)
            xt = yt = None
            if d.x_test is not None:
                xt, yt = d.tensors(device, test=True)
            if self._use(self.config.channels_last, device):
                x = x.contiguous(memory_format=torch.channels_last)
            self._cache[key] = (x, y, xt, yt, d.num_classes)
        return self._cache[key]

    @staticmethod
    def _use(flag: str, device) -> bool:
        import torch
        return flag == "on" or (flag == "auto" and torch.device(device).type == "cuda")

    def _terms(self, space, arch, data, seed, device):
        import torch
        c = self.config
        x, y, xt, yt, num_classes = self._tensors(data, device)
        model = build_seeded(space, arch, seed, num_classes, c.reduced, device)
        if self._use(c.channels_last, device):
            model = model.to(memory_format=torch.channels_last)
        amp = self._use(c.amp, device)
        gen = seeded_generator(arch, seed, "cpu")
        from .proxy_train import landscape_losses, train_epochs  # torch: only when a candidate trains
        run = train_epochs(model, x, y, c.epochs, c.batch_size, c.lr, gen, amp, step=c.step)
        if not all(np.isfinite(run.losses)):
            raise FloatingPointError(f"training loss became non-finite: {run.losses[-3:]}")
        macs = space.macs(arch, num_classes=num_classes, reduced=c.reduced)
        if c.time == "wall":
            t = run.seconds
        else:
            t = [3.0 * macs * run.samples_per_epoch / 1e9] * len(run.losses)
        terms = {
            "train_losses": run.losses,
            "epoch_seconds": run.seconds,
            "t_e": t,
            "tse": float(np.sum(run.losses)),
            "speed": speed_term(run.losses, t),
            "final_train_loss": run.losses[-1],
            "reduced_macs": macs,
            "samples_per_epoch": run.samples_per_epoch,
            "train_seconds": float(np.sum(run.seconds)),
            "amp": "bf16" if amp and torch.device(device).type == "cuda" else "fp32",
            "train_step": "cuda_graph" if run.captured else ("static" if c.step == "graph" else "eager"),
        }
        if run.captured:
            terms["capture_seconds"] = run.capture_seconds  # kept out of epoch_seconds and t_e
        key, (ex, ey) = ("test_acc", (xt, yt)) if xt is not None else ("train_acc", (x, y))
        terms[key] = _accuracy(model, ex, ey, c.batch_size, amp)
        # After a few hundred steps BN's running statistics (momentum 0.1) still describe the first
        # batches, so eval-mode accuracy sits at chance however well the weights fit; recalibrated on
        # the training set (OFA's set_running_statistics), it shows what was learned. The landscape
        # walk below restores the trained buffers, so no other term depends on this.
        recalibrate_bn(model, x, c.batch_size, amp)
        terms[key + "_bn"] = _accuracy(model, ex, ey, c.batch_size, amp)
        if self.needs_landscape and c.points > 0:
            import time
            t0 = time.perf_counter()
            js = landscape_losses(model, run, x, y, c.points, c.batch_size, c.landscape, c.lr, gen, amp)
            terms["landscape_losses"] = js
            terms["landscape"] = landscape_term(js)
            terms["landscape_seconds"] = time.perf_counter() - t0
        return self._score(terms), terms

    def _score(self, terms: dict) -> float:
        raise NotImplementedError

    # The options that decide the seeded training run (and so every term but the landscape walk).
    RUN_KEYS = ("epochs", "batch_size", "lr", "images_per_class", "amp", "channels_last", "reduced")

    def from_shared_run(self, record: dict) -> dict:
        """This estimator's record read off another training estimator's record of the same run.

        The run is fixed by (arch, seed, RUN_KEYS), so TSE and early-stop accuracy on MOTE's run equal
        what they would compute by training again (a test checks it); only the training is saved.
        """
        src = record.get("config", {})
        differ = [k for k in self.RUN_KEYS if src.get(k) != getattr(self.config, k)]
        if differ:
            raise InputError(f"estimator {self.name!r} cannot reuse a {src.get('estimator')!r} run: "
                             f"{', '.join(differ)} differ")
        out = {**record, "estimator": self.name, "config": self.config_dict(), "config_hash": self.config_hash(),
               "derived_from": src.get("estimator")}
        if record.get("status") in ("ok", "flagged"):
            score = self._score(dict(record["terms"]))
            ok = score is not None and np.isfinite(score)
            out.update(score=float(score) if ok else None, status="ok" if ok else "flagged")
        return out


def recalibrate_bn(model, x, batch_size: int, amp: bool) -> None:
    """BatchNorm running statistics recomputed as exact averages over ``x`` (no gradient, no update)."""
    import torch
    from torch import nn

    from .proxy_train import _autocast
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns:
        return
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            with _autocast(x.device, amp):
                model(x[s:s + batch_size])
    for m, mom in zip(bns, momenta):
        m.momentum = mom


def _accuracy(model, x, y, batch_size: int, amp: bool) -> float:
    import torch

    from .proxy_train import _autocast
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            with _autocast(x.device, amp):
                correct += (model(x[s:s + batch_size]).argmax(1) == y[s:s + batch_size]).sum().item()
    model.train()
    return correct / max(x.shape[0], 1)


@register_estimator("mote")
class MOTE(_TrainingEstimator):
    """The paper's estimate; the record keeps L, S, every l_e, t_e and J(theta_g)."""
    OPTIONS = {"points": whole(1)}  # the landscape walk needs two points at least (G >= 1)

    def _score(self, terms: dict) -> float:
        mote = mote_value(terms["landscape"], terms["speed"], self.config.transform, self.boxcox_params)
        terms["mote"] = mote
        if self.config.transform == "box-cox":
            terms["boxcox"] = (self.boxcox_params or BOXCOX_PRESETS["nb201"]).to_dict()
        return score_from_mote(mote)


@register_estimator("tse")
class TSE(_TrainingEstimator):
    """Training speed estimation (Ru et al.): the sum of epoch training losses, lower is better."""
    needs_landscape = False

    def _score(self, terms: dict) -> float:
        return -terms["tse"]


@dataclass
class EarlyStopConfig(TrainingConfig):
    # accuracy after recalibrating BN's running statistics on the training set (False: the running
    # statistics of the training run itself, which after a short run leave the accuracy at chance)
    bn_recalibrate: bool = True


@register_estimator("early_stop_acc")
class EarlyStopAccuracy(_TrainingEstimator):
    """Accuracy on the proxy data's test split after E epochs (training split if it has none)."""
    Config = EarlyStopConfig
    needs_landscape = False

    def _score(self, terms: dict) -> float:
        key = "test_acc" if "test_acc" in terms else "train_acc"
        return terms[key + "_bn"] if self.config.bn_recalibrate else terms[key]


def rescore_population(records: list[dict], estimator: MOTE, boxcox: str = "fit") -> tuple[list[dict], dict]:
    """Refit Box-Cox on a scored population (or apply a preset) and recompute every MOTE score.

    Returns the updated records and the parameters used, which the caller stores with them.
    """
    ok = [r for r in records if r.get("status") == "ok" and "landscape" in r.get("terms", {})]
    if boxcox == "fit":
        params = fit_boxcox_params([r["terms"]["landscape"] for r in ok], [r["terms"]["speed"] for r in ok])
    else:
        params = BOXCOX_PRESETS[boxcox]
    est = MOTE(**{**estimator.config.__dict__, "transform": "box-cox"})
    est.boxcox_params = params
    out = []
    for r in records:
        r = dict(r)
        if r.get("status") == "ok" and "landscape" in r.get("terms", {}):
            terms = dict(r["terms"])
            r["score"] = est._score(terms)
            r["terms"] = terms
        out.append(r)
    return out, params.to_dict()

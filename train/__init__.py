"""How a winner is retrained: timm models, recipes, data pipelines, the training loop, export.

``build_winner(path)`` builds a search's winner (its winner.json or run folder) as a timm model without
touching timm's registry. Registering with timm is explicit: ``register_presets()`` for
``mote_mobilenetv2_100`` / ``mote_mobilenetv3_large_100``, ``register_winner(path)`` (or
``create_model(path)``) for a winner; importing the package registers nothing.

>>> import train, timm
>>> model = train.build_winner("runs/mbv3_400m")                 # doctest: +SKIP
>>> train.register_presets()
['mote_mobilenetv2_100', 'mote_mobilenetv3_large_100']
>>> model = timm.create_model("mote_mobilenetv2_100")             # timm's mobilenetv2_100, key for key
>>> recipe = train.resolve(train.load_recipe("mobilenetv3_large_100"), global_batch=1024)
"""
from .models import (PREFIX, arch_info, build_winner, create_model, model_info, preset_names, register_arch,
                     register_presets, register_winner, resolve_model_name, retrainable_spaces, write_model_card)
from .recipes import list_recipes, load_recipe, resolve, save_resolved


def __getattr__(name: str):
    if name == "PRESETS":  # the preset names, without registering them (register_presets() does that)
        return tuple(preset_names())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["PREFIX", "PRESETS", "arch_info", "build_winner", "create_model", "model_info", "preset_names",
           "register_arch", "register_presets", "register_winner", "resolve_model_name", "retrainable_spaces",
           "write_model_card", "list_recipes", "load_recipe", "resolve", "save_resolved"]

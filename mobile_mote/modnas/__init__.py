"""MODNAS on NB201: device embeddings, a device-conditioned latency predictor, a weight-sharing supernet,
ReinMax sampling, MGDA and the preference- and device-conditioned MetaHypernetwork that ties them."""
from .devices import REFERENCE_ARCHS, TEST_DEVICES, TRAIN_DEVICES, DeviceLatencies, embed_reference_latencies
from .hypernetwork import MetaHypernetwork
from .latency_predictor import LatencyPredictor, PredictorConfig, evaluate_predictor, train_latency_predictor
from .mgda import min_norm_weights
from .sampling import gumbel_st, reinmax, sample_ops
from .trainer import PROFILES, ModnasConfig, ModnasTrainer, config_for, rays_on_quarter_circle

__all__ = ["REFERENCE_ARCHS", "TEST_DEVICES", "TRAIN_DEVICES", "DeviceLatencies", "embed_reference_latencies",
           "MetaHypernetwork", "LatencyPredictor", "PredictorConfig", "evaluate_predictor",
           "train_latency_predictor", "min_norm_weights", "gumbel_st", "reinmax", "sample_ops", "PROFILES",
           "ModnasConfig", "ModnasTrainer", "config_for", "rays_on_quarter_circle"]

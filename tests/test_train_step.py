"""The static-shape training step (a CUDA graph on CUDA) against the eager loop, on CPU."""
import pytest
import torch

from mobile_mote.errors import InputError
from mobile_mote.estimators import build_seeded, get_estimator, seeded_generator
from mobile_mote.estimators.proxy_train import StaticStep, train_epochs
from mobile_mote.search_spaces import get_space

FAST = {"epochs": 2, "points": 1, "images_per_class": 5, "batch_size": 16, "time": "cost"}


@pytest.fixture(scope="module")
def small_data(shared_data):
    from mobile_mote.data.proxy_data import load_proxy_data
    return load_proxy_data(shared_data / "proxy_cifar100_10").subset(5, seed=1)  # 50 images: a ragged last batch


@pytest.mark.parametrize("space_name,arch", [("macro", "12012012"), ("nb201", "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")])
def test_static_step_gives_the_eager_losses_and_weights(small_data, space_name, arch):
    sp = get_space(space_name)
    x, y = small_data.tensors("cpu")
    assert x.shape[0] % 16 != 0
    runs = {}
    for step in ("eager", "graph"):
        model = build_seeded(sp, arch, 0, small_data.num_classes, True)
        runs[step] = train_epochs(model, x, y, 3, 16, 1e-3, seeded_generator(arch, 0), step=step)
    assert runs["graph"].losses == pytest.approx(runs["eager"].losses, rel=1e-5)
    assert runs["graph"].steps == runs["eager"].steps == 3 * 4 and not runs["graph"].captured
    for k, v in runs["eager"].final_state.items():
        assert torch.allclose(runs["graph"].final_state[k].float(), v.float(), atol=1e-5), k


def test_static_step_reads_its_batch_from_fixed_buffers():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    st = StaticStep(model, opt, x, y, 4, False)
    buf = st.static_x.data_ptr()
    st(torch.tensor([0, 1, 2, 3]))
    st(torch.tensor([4, 5, 6, 7]))
    assert st.static_x.data_ptr() == buf and torch.equal(st.static_x, x[4:8]) and not st.captured


def test_step_mode_keeps_the_score_and_has_its_own_hash(small_data):
    sp = get_space("macro")
    eager = get_estimator("mote", **FAST)
    graph = get_estimator("mote", **FAST, step="graph")
    # capturable Adam and a captured step differ in the last bits (and wall time): their own records;
    # the eager loop keeps the hash it had before ``step`` existed
    assert graph.config_hash() != eager.config_hash() and graph.config_dict()["step"] == "graph"
    assert "step" not in eager.config_dict()
    a = eager.estimate(sp, "12012012", small_data, seed=1)
    b = graph.estimate(sp, "12012012", small_data, seed=1)
    assert b.score == pytest.approx(a.score, rel=1e-5)
    assert a.terms["train_step"] == "eager" and b.terms["train_step"] == "static"


def test_unknown_step_is_one_line():
    with pytest.raises(InputError, match="step 'jit'"):
        get_estimator("mote", step="jit")
    with pytest.raises(ValueError, match="accepted: eager, graph"):
        train_epochs(torch.nn.Linear(3, 2), torch.randn(4, 3), torch.zeros(4, dtype=torch.long), 1, 2, 1e-3,
                     torch.Generator(), step="jit")


def test_graph_step_with_several_workers_is_refused_in_one_line():
    from mobile_mote.concurrent import ConcurrentScoring, check_workers
    graph = get_estimator("mote", **FAST, step="graph")
    assert check_workers(graph, 1) == 1 and check_workers(get_estimator("mote", **FAST), 4) == 4
    with pytest.raises(InputError, match="step=graph") as e:
        check_workers(graph, 2)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="one per process"):
        ConcurrentScoring(get_space("macro"), graph, None, 0, "cpu", 3)


def test_graph_step_with_several_workers_exits_2_from_the_cli(capsys):
    from mobile_mote.cli import main
    rc = main(["score", "--space", "macro", "--estimator", "mote", "--profile", "tiny", "--set", "step=graph",
               "--workers-per-device", "2", "--arch", "12012012", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "step=graph" in err[0]

"""Clear errors instead of raw torch / vmap errors: models in training mode with batch-dependent
or random layers, and dtype mismatches between the model and the data (issue 12)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from delyap import sgd  # noqa: E402


def data(dtype=torch.float64, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g, dtype=dtype)
    return X, torch.sin(X[:, 0]).to(dtype)


def net(middle, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 6), middle, torch.nn.Linear(6, 1)).to(dtype)


def state(model):
    """Everything a call could change: parameters, buffers, and each module's mode."""
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return tensors, [m.training for m in model.modules()]


def assert_same_state(model, before):
    tensors, modes = before
    now_tensors, now_modes = state(model)
    assert now_modes == modes
    for k, v in tensors.items():
        assert torch.equal(now_tensors[k], v), k


ENTRY_POINTS = {
    "gram_matrix": lambda m, X, Y: sgd.gram_matrix(m, X),
    "lyapunov": lambda m, X, Y: sgd.model_lyapunov(m, X, Y, 0.1, 2, steps=100, check="ignore"),
    "train_to_interpolation": lambda m, X, Y: sgd.train_to_interpolation(m, X, Y, max_iter=2),
    "stability_map": lambda m, X, Y: sgd.stability_map(m, X, Y, lr=[0.1], batch_size=[2],
                                                       steps=100, check="ignore"),
}

TRAIN_MODE_LAYERS = {
    "BatchNorm1d": lambda: torch.nn.BatchNorm1d(6),
    "Dropout": lambda: torch.nn.Dropout(0.3),
    "AlphaDropout": lambda: torch.nn.AlphaDropout(0.3),
    "RReLU": lambda: torch.nn.RReLU(),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("layer", sorted(TRAIN_MODE_LAYERS))
def test_train_mode_layer_says_call_eval(layer, entry):
    X, Y = data()
    model = net(TRAIN_MODE_LAYERS[layer]())
    before = state(model)
    with pytest.raises(ValueError,
                       match=rf"model: '1' \({layer}\) is in training mode.*model\.eval\(\)"):
        ENTRY_POINTS[entry](model, X, Y)
    assert_same_state(model, before)  # running statistics untouched, mode unchanged


def test_nested_submodule_in_training_mode_is_named():
    X, Y = data()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 6),
                                torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Dropout(0.2)),
                                torch.nn.Linear(6, 1)).double()
    model.eval()
    model[1][1].train()  # the top level says eval, one layer does not
    with pytest.raises(ValueError, match=r"'1\.1' \(Dropout\).*model\.eval\(\)"):
        sgd.gram_matrix(model, X)


def test_plain_model_in_training_mode_is_accepted():
    """Training mode alone is no error: only layers that act on it are (nn.Module's default)."""
    X, _ = data()
    model = net(torch.nn.Tanh())
    assert model.training
    K, c = sgd.gram_matrix(model, X)
    assert c == 1 and K.shape == (8, 8)


def per_sample_gram(model, X):
    """K = J Jᵀ from one autograd call per sample (independent of torch.func / vmap)."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        out = model(X[i:i + 1]).reshape(())
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(out, params)]))
    J = torch.stack(rows).double()
    return (J @ J.T).numpy()


def test_batchnorm_in_eval_mode_gives_the_per_sample_gram():
    X, _ = data()
    model = net(torch.nn.BatchNorm1d(6))
    with torch.no_grad():
        model(X)  # running statistics from the data
    model.eval()
    K, _ = sgd.gram_matrix(model, X)
    np.testing.assert_allclose(K, per_sample_gram(model, X), rtol=1e-12, atol=1e-12)


def test_batchnorm_without_running_stats_is_rejected_in_every_mode():
    X, _ = data()
    model = net(torch.nn.BatchNorm1d(6, track_running_stats=False)).eval()
    with pytest.raises(ValueError, match=r"'1' \(BatchNorm1d\).*batch statistics"):
        sgd.gram_matrix(model, X)


@pytest.mark.parametrize("model_dtype, data_dtype", [(torch.float32, torch.float64),
                                                     (torch.float64, torch.float32)])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_dtype_mismatch_says_convert_to_float64(model_dtype, data_dtype, entry):
    X, Y = data(data_dtype)
    model = net(torch.nn.Tanh(), dtype=model_dtype)
    before = state(model)
    want = str(data_dtype).replace("torch.", "")
    have = str(model_dtype).replace("torch.", "")
    with pytest.raises(TypeError, match=rf"X: dtype {want} but the model's parameters are {have}; "
                                        r"convert the model or the data to float64"):
        ENTRY_POINTS[entry](model, X, Y)
    assert_same_state(model, before)


def test_mixed_parameter_dtypes_are_named():
    X, _ = data()
    model = net(torch.nn.Tanh())
    model[2].float()
    with pytest.raises(TypeError, match=r"model: parameters of mixed dtypes \(float32, float64\)"):
        sgd.gram_matrix(model, X)


def test_float32_model_with_float32_data_still_works():
    X, _ = data(torch.float32)
    model = net(torch.nn.Tanh(), dtype=torch.float32)
    K, _ = sgd.gram_matrix(model, X)
    np.testing.assert_allclose(K, per_sample_gram(model, X), rtol=1e-5, atol=1e-6)

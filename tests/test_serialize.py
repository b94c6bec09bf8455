"""serialize: the one numpy → plain-JSON conversion and its per-caller choices."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from asymsense.errors import InputError
from asymsense.serialize import dumps, plain


def test_numpy_values_become_the_python_values_json_writes():
    value = {"f32": np.float32(0.1), "i": np.int64(7), "b": np.bool_(True), "a": np.arange(3), "t": (1, np.float64(2.5)),
             np.int32(4): "key", "s": np.str_("x"), "n": None, "nested": [{"m": np.array([[1.0, 2.0]])}]}
    out = plain(value)
    assert out == {"f32": float(np.float32(0.1)), "i": 7, "b": True, "a": [0, 1, 2], "t": [1, 2.5], "4": "key", "s": "x",
                   "n": None, "nested": [{"m": [[1.0, 2.0]]}]}
    assert type(out["f32"]) is float and type(out["i"]) is int and type(out["b"]) is bool
    assert json.loads(dumps(value)) == out


@pytest.mark.parametrize("bad", [math.nan, np.float32("inf"), -math.inf])
def test_non_finite_numbers_per_caller(bad):
    assert plain({"x": [bad]}) == {"x": [None]}
    kept = plain({"x": [bad]}, nonfinite="keep")["x"][0]
    assert math.isnan(kept) if math.isnan(bad) else kept == bad
    with pytest.raises(InputError, match=r"alpha\.x must be finite"):
        plain({"x": [bad]}, nonfinite="error", name="alpha")
    assert "NaN" not in dumps([bad]) and "null" in dumps([bad])
    assert dumps([bad], nonfinite="keep", indent=None) == json.dumps([float(bad)])  # NaN / Infinity, as json writes them


def test_other_objects_per_caller():
    path = Path("/tmp/x")
    assert plain([path]) == [path]
    assert plain([path], other="str") == ["/tmp/x"]
    with pytest.raises(InputError, match=r"grid\.p: unsupported value"):
        plain({"p": path}, other="error", name="grid")
    with pytest.raises(TypeError):
        dumps({"p": path})
    with pytest.raises(ValueError, match="nonfinite"):
        plain(1.0, nonfinite="drop")


def test_same_text_as_json_with_a_numpy_default():
    """The completion summary's former writer: json.dumps(default=...) unwrapping numpy, str for the rest."""

    def default(v):
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
        return str(v)

    summary = {"rmse": np.float64(0.91), "n": np.int64(3), "shape": (943, 1682), "nan": math.nan, "f32": np.float32(1e-3),
               "path": Path("ml"), "sv": np.array([3.0, 1.5], np.float32), "config": {"seed": 0, "clip": [1.0, 5.0]}}
    assert dumps(summary, nonfinite="keep", other="str") == json.dumps(summary, indent=2, default=default)

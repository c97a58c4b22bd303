from __future__ import annotations

import numpy as np
import pytest
import torch

from sgnas.errors import SgnasError, SpaceMismatchError
from sgnas.space import get_space
from sgnas.supernet import UnifiedSupernet
from sgnas.evaluation.checkpoint import (
    SUPERNET_KIND,
    check_plain,
    load_checkpoint,
    load_supernet,
    save_checkpoint,
)


def _supernet_payload(space, net, **over):
    payload = {
        "space": space.name,
        "space_fingerprint": space.fingerprint,
        "forced_sampling": True,
        "model": net.state_dict(),
        "rng": {"path": np.random.default_rng(0).bit_generator.state,
                "torch": torch.get_rng_state()},
    }
    payload.update(over)
    return payload


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return UnifiedSupernet(get_space("tiny"))


def test_roundtrip_with_weights_only(tmp_path, tiny_model):
    space = get_space("tiny")
    path = save_checkpoint(tmp_path / "s.pt", _supernet_payload(space, tiny_model), SUPERNET_KIND)
    raw = torch.load(path, weights_only=True)
    assert raw["kind"] == SUPERNET_KIND and raw["format_version"] == 1
    model, meta = load_supernet(path)
    assert not model.training
    assert "model" not in meta and meta["space"] == "tiny"
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    rng = np.random.default_rng()
    rng.bit_generator.state = raw["rng"]["path"]
    assert rng.integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)


def test_check_plain_refuses_objects():
    check_plain({"a": [1, 2.0, "x", None, True, torch.zeros(2)], "b": (1,)})
    with pytest.raises(TypeError, match="ndarray"):
        check_plain({"a": np.zeros(2)})
    with pytest.raises(TypeError, match="TorchVersion"):
        check_plain({"v": torch.__version__})


def test_fingerprint_mismatch(tmp_path, tiny_model):
    space = get_space("tiny")
    path = save_checkpoint(tmp_path / "s.pt",
                           _supernet_payload(space, tiny_model, space_fingerprint="abc"),
                           SUPERNET_KIND)
    with pytest.raises(SpaceMismatchError) as info:
        load_supernet(path)
    msg = str(info.value)
    assert "'tiny'" in msg and "abc" in msg and space.fingerprint in msg and "\n" not in msg


def test_truncated_and_foreign_files(tmp_path, tiny_model):
    space = get_space("tiny")
    path = save_checkpoint(tmp_path / "s.pt", _supernet_payload(space, tiny_model), SUPERNET_KIND)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(SgnasError, match="truncated or not a checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(SgnasError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(SgnasError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(SgnasError, match="expected 'sgnas-generator'"):
        load_checkpoint(path, "sgnas-generator")
    torch.save({"obj": np.zeros(2)}, tmp_path / "np.pt")
    with pytest.raises(SgnasError, match="weights-only"):
        load_checkpoint(tmp_path / "np.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(SgnasError, match="no 'kind' tag"):
        load_checkpoint(tmp_path / "list.pt")


def test_state_that_does_not_fit(tmp_path, tiny_model):
    space = get_space("tiny")
    state = dict(tiny_model.state_dict())
    state.pop(next(iter(state)))
    path = save_checkpoint(tmp_path / "s.pt", _supernet_payload(space, tiny_model, model=state),
                           SUPERNET_KIND)
    with pytest.raises(SgnasError, match="does not fit"):
        load_supernet(path)


def test_slim_supernet_keeps_weights_in_half_precision(tmp_path, tiny_model):
    from sgnas.evaluation.checkpoint import slim_supernet

    space = get_space("tiny")
    full = save_checkpoint(tmp_path / "s.pt", _supernet_payload(space, tiny_model), SUPERNET_KIND)
    slim = slim_supernet(full, tmp_path / "slim.pt")
    raw = torch.load(slim, weights_only=True)
    assert "rng" not in raw and raw["slim"]["half"] is True
    assert all(v.dtype == torch.float16 for v in raw["model"].values() if v.is_floating_point())
    model, meta = load_supernet(slim)
    assert meta["space"] == "tiny"
    for k, v in tiny_model.state_dict().items():
        got = model.state_dict()[k]
        assert got.dtype == v.dtype
        assert torch.allclose(got, v, rtol=1e-3, atol=1e-3), k

import json

import numpy as np
import pytest

from sgnas.errors import ArchitectureError, SgnasError
from sgnas.space import CHOICES, SKIP_INDEX, Architecture, get_space, load_architecture


@pytest.fixture(params=["imagenet", "cifar10", "tiny"])
def space(request):
    return get_space(request.param)


def test_eighty_configurations_per_layer(space):
    configs = space.configs
    assert len(configs) == 80 == 6 + 10 + 15 + 21 + 28
    assert len(set(configs)) == 80
    assert all(list(c) == sorted(c) and 2 <= len(c) <= 6 for c in configs)


def test_imagenet_macro_matches_the_paper():
    s = get_space("imagenet")
    assert s.num_layers == 19
    assert [l.c_out for l in s.layers] == [32, 32, 40, 40, 40, 40, 80, 80, 80, 80, 96, 96, 96, 96,
                                          192, 192, 192, 192, 320]
    assert [i for i, l in enumerate(s.layers) if l.stride == 2] == [0, 2, 6, 14]
    assert s.layers[0].in_size == 112 and s.final_size == 7
    assert len({l.shape_key for l in s.layers}) == 11
    assert len(s.all_keys()) == 11 * 80 + 2


def test_cifar_variant_keeps_resolution_in_first_layers():
    s = get_space("cifar10")
    assert s.stem_stride == 1 and s.layers[0].stride == 1
    assert s.layers[0].in_size == 32 and s.final_size == 4 and s.num_classes == 10


def test_fingerprints_differ_between_spaces_and_are_stable():
    prints = {get_space(n).fingerprint for n in ("imagenet", "cifar10", "tiny")}
    assert len(prints) == 3
    assert get_space("imagenet").fingerprint == get_space("imagenet").fingerprint


def test_sampling_uses_the_passed_generator(space):
    a = space.sample(np.random.default_rng(7))
    b = space.sample(np.random.default_rng(7))
    c = space.sample(np.random.default_rng(8))
    assert a == b and a != c
    space.validate(a)


def test_forced_sampling_puts_skips_last(space):
    rng = np.random.default_rng(0)
    for _ in range(20):
        ch = space.sample_choices(rng, forced_sampling=True)
        for row in ch:
            skip = row == SKIP_INDEX
            e = int((~skip).sum())
            assert 2 <= e <= 6 and not skip[:e].any() and skip[e:].all()


def test_sampling_without_forced_sampling_scatters_skips():
    s = get_space("imagenet")
    rng = np.random.default_rng(0)
    scattered = 0
    for _ in range(20):
        for row in s.sample_choices(rng, forced_sampling=False):
            e = int((row != SKIP_INDEX).sum())
            scattered += bool((row[:e] == SKIP_INDEX).any())
    assert scattered > 0


def test_json_and_string_forms_round_trip(space):
    arch = space.sample(np.random.default_rng(3))
    assert Architecture.from_json(arch.to_json()) == arch
    assert Architecture.parse(str(arch)) == arch
    assert json.loads(arch.to_json())["layers"][0] == list(arch.layers[0])


def test_architecture_is_canonical():
    a = Architecture("tiny", ((7, 3), (5, 3, 3), (3, 3), (7, 7)))
    b = Architecture("tiny", ((3, 7), (3, 5, 3), (3, 3), (7, 7)))
    assert a == b and hash(a) == hash(b) and a.layers[1] == (3, 3, 5)
    assert str(a) == "tiny:37-335-33-77"


def test_choices_one_hot_round_trip(space):
    arch = space.sample(np.random.default_rng(5))
    oh = space.one_hot(arch)
    assert oh.shape == (space.num_layers, 6, len(CHOICES))
    assert np.allclose(oh.sum(-1), 1)
    assert space.arch_from_choices(oh.argmax(-1)) == arch


@pytest.mark.parametrize(
    "layers, message",
    [
        (((3, 3),) * 3, "has 3 layers"),
        (((3, 3), (3, 4), (3, 3), (3, 3)), "layer 1: kernel 4"),
        (((3, 3), (3, 3), (3,), (3, 3)), "layer 2: 1 sub-blocks"),
        (((3, 3), (3, 3), (3, 3), (3,) * 7), "layer 3: 7 sub-blocks"),
    ],
)
def test_validation_names_layer_and_rule(layers, message):
    with pytest.raises(ArchitectureError, match=message):
        get_space("tiny").validate(Architecture("tiny", layers))


def test_bad_strings_and_files(tmp_path):
    with pytest.raises(ArchitectureError):
        Architecture.parse("tiny-33-33")
    with pytest.raises(ArchitectureError, match="layer 1"):
        Architecture.parse("tiny:33-3x-33-33")
    bad = tmp_path / "a.json"
    bad.write_text("{not json")
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        load_architecture(str(bad))
    with pytest.raises(SgnasError, match="not found"):
        load_architecture(str(tmp_path / "missing.json"))
    with pytest.raises(SgnasError, match="unknown search space"):
        load_architecture("mars:33-33")


def test_load_architecture_from_file_and_string(tmp_path):
    arch = get_space("tiny").sample(np.random.default_rng(0))
    path = tmp_path / "arch.json"
    path.write_text(arch.to_json())
    assert load_architecture(str(path)) == arch
    assert load_architecture(str(arch)) == arch


@pytest.mark.parametrize("name", ["tiny", "cifar10"])
def test_forced_samples_are_canonical_and_share_the_layer_sampler(name):
    space = get_space(name)
    rows = space.sample_choices(np.random.default_rng(3))
    assert np.array_equal(rows, space.choices(space.arch_from_choices(rows)))
    # the same stream drawn layer by layer through sample_layer gives the same architecture
    rng = np.random.default_rng(3)
    layers = tuple(space.sample_layer(rng) for _ in range(space.num_layers))
    assert space.arch_from_choices(rows).layers == layers

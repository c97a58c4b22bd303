import json

import pytest

from sgnas.errors import SgnasError
from sgnas.train.recipes import (
    TrainRecipe,
    cifar_recipe,
    imagenet_recipe,
    load_recipe,
    save_recipe,
)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("make", [cifar_recipe, imagenet_recipe])
def test_round_trip(tmp_path, suffix, make):
    recipe = make()
    path = tmp_path / f"r{suffix}"
    save_recipe(recipe, path)
    assert load_recipe(str(path)) == recipe
    assert TrainRecipe.from_dict(recipe.to_dict()) == recipe


def test_builtin_names():
    assert load_recipe("cifar") == cifar_recipe()
    assert load_recipe("imagenet").optimizer == "rmsprop"


def test_imagenet_schedule_matches_paper():
    r = imagenet_recipe()
    assert r.batch_size == 256 and r.peak_lr == pytest.approx(0.16)
    assert r.lr_at(0.0) == 0.0
    assert r.lr_at(2.5) == pytest.approx(0.08)  # linear warm-up from 0
    assert r.lr_at(5.0) == pytest.approx(0.16)  # warm-up end
    assert r.lr_at(7.99) == pytest.approx(0.16)  # constant within the first 3 epochs after warm-up
    assert r.lr_at(8.0) == pytest.approx(0.16 * 0.97)
    assert r.lr_at(11.0) == pytest.approx(0.16 * 0.97 ** 2)
    assert r.lr_at(5.0 + 3 * 100) == pytest.approx(0.16 * 0.97 ** 100)
    big = r.override(batch_size=1024)
    assert big.lr_at(5.0) == pytest.approx(0.16 * 1024 / 256)  # linear scaling with the batch


def test_cifar_cosine():
    r = cifar_recipe()
    assert r.lr_at(0) == pytest.approx(0.1)
    assert r.lr_at(100) == pytest.approx(0.05)
    assert r.lr_at(200) == pytest.approx(0.0)
    assert r.override(min_lr=0.001).lr_at(200) == pytest.approx(0.001)


def test_yaml_with_base_and_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("base: imagenet\nepochs: 10\nweight_decay: 4e-5\n")
    r = load_recipe(str(path))
    assert r.epochs == 10 and r.weight_decay == 4e-5 and r.optimizer == "rmsprop"


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"epoch": 3}', "unknown recipe field 'epoch'"),
        ('{"epochs": "many"}', "epochs"),
        ('{"optimizer": "adam"}', "unknown optimizer"),
        ('{"nesterov": 1}', "nesterov"),
        ('{"warmup_epochs": -1}', "warmup_epochs"),
        ("[1, 2]", "mapping"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_recipe_files(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SgnasError, match=match):
        load_recipe(str(path))


def test_unknown_recipe_name():
    with pytest.raises(SgnasError, match="not a built-in"):
        load_recipe("mnist")


def test_override_ignores_none_and_validates():
    r = cifar_recipe().override(epochs=None, lr=0.2)
    assert r.epochs == 200 and r.lr == 0.2
    with pytest.raises(SgnasError):
        cifar_recipe().override(batch_size=0)
    assert json.loads(json.dumps(r.to_dict())) == r.to_dict()

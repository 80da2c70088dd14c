import pytest

from tests.conftest import resolve, training_defaults
from xval.config.params import (
    differing,
    params_hash,
    parse_assignment,
    parse_instance,
    parse_override,
)
from xval.config.selection import metric_direction
from xval.core.errors import ParameterError

DEFAULTS = training_defaults()
BASE = ['architecture="example_cnn"', 'reshaping_type="conv"', 'comment_1="a"',
        'comment_2="b"']


def test_parse_assignment_literals():
    assert parse_assignment("learning_rate=0.001") == ("learning_rate", 0.001)
    assert parse_assignment('architecture = "vgg_mini"') == ("architecture", "vgg_mini")
    assert parse_assignment("flag=True") == ("flag", True)
    assert parse_assignment("sizes=[1, 2]") == ("sizes", [1, 2])


@pytest.mark.parametrize("text", ['x=__import__("os").system("true")', "x=vgg_mini",
                                  "x=1+", "x=open('f')"])
def test_parse_assignment_not_literal(text):
    with pytest.raises(ParameterError, match="not a Python literal.*Quote strings"):
        parse_assignment(text, "instance 3")


def test_parse_assignment_bad_form():
    with pytest.raises(ParameterError, match="not of the form name=value"):
        parse_assignment("learning_rate")
    with pytest.raises(ParameterError, match="not a valid parameter name"):
        parse_assignment("1x=2")


@pytest.mark.parametrize("value,kind,depth", [
    ("[" * 3000 + "]" * 3000, "list", 3000),
    ("(" * 250 + ")" * 250, "tuple", 250),
    ("{" * 201 + "}" * 201, "dict", 201),
])
def test_a_value_nested_too_deeply_is_called_what_it_is(value, kind, depth):
    """Issue 59: `--set hidden_units=[[[...]]]` 3000 deep was taken for text ("is a str");
    Python's parser stops at 200 levels. It is called a list, its depth and the limit said;
    in an instance too (not "not a Python literal ... Quote strings")."""
    for parse, where in ((parse_override, "--set x"), (lambda t: parse_assignment(t, "i 2"),
                                                       "i 2: x")):
        with pytest.raises(ParameterError, match=rf"{where}: the value is a {kind}.* nested "
                                                 rf"{depth} levels deep, deeper than a value "
                                                 r"can be read \(fewer than 200 levels\)"):
            parse(f"x={value}")
    assert isinstance(parse_override("x=" + "[" * 150 + "]" * 150)[1], list)  # 150: read
    assert parse_override("comment_1=[draft] try") == ("comment_1", "[draft] try")


def test_parse_instance_dict_and_list_agree():
    assert parse_instance(BASE, "i") == parse_instance(
        {"architecture": "example_cnn", "reshaping_type": "conv", "comment_1": "a",
         "comment_2": "b"}, "i")


def test_parse_instance_repeated_name():
    with pytest.raises(ParameterError, match="given twice"):
        parse_instance(["a=1", "a=2"], "instance 1")


def test_resolve_layers_later_wins():
    p = resolve(1, BASE + ["learning_rate=0.01"], training_defaults=DEFAULTS,
                experiment_params={"learning_rate": 0.1, "epochs": 3},
                overrides={"epochs": 2})
    assert p["learning_rate"] == 0.01
    assert p["epochs"] == 2
    assert p["batch_size"] == DEFAULTS["batch_size"]
    assert p["filters"] == 16  # architecture keyword default recorded


def test_resolve_architecture_keyword_accepted_and_typed():
    p = resolve(1, BASE + ["filters=8", "dropout=0"], training_defaults=DEFAULTS)
    assert p["filters"] == 8 and p["dropout"] == 0.0 and isinstance(p["dropout"], float)


def test_resolve_unknown_name_suggests_closest():
    with pytest.raises(ParameterError, match="unknown parameter 'learnin_rate'.*learning_rate"):
        resolve(2, BASE + ["learnin_rate=0.1"], training_defaults=DEFAULTS)


def test_resolve_unknown_architecture_lists_known():
    spec = ['architecture="vgg_maxi"', 'reshaping_type="conv"', 'comment_1=""', 'comment_2=""']
    with pytest.raises(ParameterError, match="architecture='vgg_maxi': expected one of "
                                             ".*vgg_mini.*Did you mean .*'vgg_mini'"):
        resolve(1, spec, training_defaults=DEFAULTS)


@pytest.mark.parametrize("extra,match", [
    ('learning_rate="0.1"', "learning_rate='0.1' is a str; expected a float"),
    ("epochs=2.5", "epochs=2.5 is a float; expected a int"),
    ("class_weights=1", "class_weights=1 is a int; expected a bool"),
    ("filters=True", "filters=True is a bool; expected a int"),
])
def test_resolve_wrong_type(extra, match):
    with pytest.raises(ParameterError, match=match):
        resolve(1, BASE + [extra], training_defaults=DEFAULTS)


def test_resolve_names_only_the_architecture():
    """reshaping_type defaults to the builder's own, the comments to empty; naming them
    gives the same parameters (old scripts resolve as before)."""
    short = resolve(4, ['architecture="example_cnn"'], training_defaults=DEFAULTS)
    assert (short["reshaping_type"], short["comment_1"], short["comment_2"]) == ("conv", "", "")
    full = resolve(4, ['architecture="example_cnn"', 'reshaping_type="conv"',
                       'comment_1=""', 'comment_2=""'], training_defaults=DEFAULTS)
    assert short == full
    with pytest.raises(ParameterError, match=r"instance 4: no architecture\. Every instance "
                                             r"names its architecture"):
        resolve(4, ['comment_1="a"'], training_defaults=DEFAULTS)


@pytest.mark.parametrize("extra,match", [
    ('optimizer="adagrad"', "optimizer='adagrad' is not valid"),
    ('reshaping_type="rnn"', "takes reshaping_type 'conv'"),
    ("batch_size=0", r"instance 1: batch_size=0: expected an integer in \[1, 65536\]"),
    ("learning_rate=-1.0", r"learning_rate=-1.0: expected a number > 0 \(finite\)"),
    ("learning_rate=1e999", r"learning_rate=inf: expected a number > 0 \(finite\)"),
    ("seed=-1", r"seed=-1: expected an integer in \[0, "),
    ("verbose=7", r"verbose=7: expected an integer in \[0, 2\]"),
    ("generator_workers=-3", r"generator_workers=-3: expected an integer in \[0, 256\]"),
    ("freeze_layers=-2", "freeze_layers=-2: expected an integer >= -1"),
    ("epochs=0", r"epochs=0: expected an integer in \[1, 100000\]"),
    ("patience=-1", r"patience=-1: expected an integer in \[0, 100000\]"),
    ('lr_schedule="step"', "lr_schedule='step' is not valid; expected one of constant"),
    ("load_model=5", "load_model=5: expected a string, or none; got int"),
    ('load_model="missing.keras"', r"load_model='missing.keras' does not exist \(relative "
                                   r"paths are resolved against the current directory: "),
    ('load_model="/nonexistent/model.keras"', "does not exist. Give the path"),
    ('load_model="model.h5"', r"expected a .keras file saved by Keras 3 \(legacy .h5"),
    ('save_model_metric="val_rmse"', "save_model_metric='val_rmse' is not recorded"),
    ("freeze_layers=2", "freeze_layers=2 needs load_model"),
])
def test_resolve_invalid_values(extra, match):
    spec = [s for s in BASE if not s.startswith(extra.split("=")[0])] + [extra]
    with pytest.raises(ParameterError, match=match):
        resolve(1, spec, training_defaults=DEFAULTS)


def test_resolve_class_weights_needs_classification():
    with pytest.raises(ParameterError, match="class_weights=True needs"):
        resolve(1, BASE + ["class_weights=True", 'save_model_metric="val_rmse"'],
                training_defaults=DEFAULTS, task_type="regression")


def test_params_hash_ignores_comments_only():
    a = resolve(1, BASE, training_defaults=DEFAULTS)
    b = dict(a, comment_1="other")
    c = dict(a, learning_rate=0.5)
    assert params_hash(a) == params_hash(b)
    assert params_hash(a) != params_hash(c)
    assert differing(a, c) == ["learning_rate"]


def test_params_hash_unchanged_by_keys_added_at_their_neutral_value():
    from xval.config.schema import ADDED_KEYS

    before = {name: value for name, value in resolve(1, BASE, training_defaults=DEFAULTS).items()
              if name not in ADDED_KEYS["training"]}  # as recorded before the keys existed
    now = resolve(1, BASE, training_defaults={**DEFAULTS, **ADDED_KEYS["training"]})
    assert params_hash(now) == params_hash(before)
    assert params_hash({**now, "freq_warp": 0.1}) != params_hash(now)


def test_metric_direction():
    assert metric_direction("val_accuracy") == "max"
    assert metric_direction("val_loss") == "min"
    assert metric_direction("rmse") == "min"
    assert metric_direction("val_loss", "max") == "max"


def test_parse_override_literal_or_text():
    assert parse_override("epochs=3") == ("epochs", 3)
    assert parse_override("optimizer=sgd") == ("optimizer", "sgd")
    assert parse_override('load_model="m.keras"') == ("load_model", "m.keras")
    with pytest.raises(ParameterError, match="not of the form name=value"):
        parse_override("epochs")
    with pytest.raises(ParameterError, match="not a valid parameter name"):
        parse_override("my-lr=1")


def test_resolve_checks_overrides_and_experiment_params_too():
    with pytest.raises(ParameterError, match="instance 2: seed=-1"):
        resolve(2, BASE, training_defaults=DEFAULTS, overrides={"seed": -1})
    with pytest.raises(ParameterError, match="instance 2: verbose=7"):
        resolve(2, BASE, training_defaults=DEFAULTS, experiment_params={"verbose": 7})


def test_resolve_load_model_relative_to_cwd_becomes_absolute(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "fold_0.keras").write_bytes(b"PK")
    monkeypatch.chdir(tmp_path)
    p = resolve(1, BASE + ['load_model="models/fold_0.keras"', "freeze_layers=1"],
                training_defaults=DEFAULTS)
    assert p["load_model"] == str(tmp_path / "models" / "fold_0.keras")

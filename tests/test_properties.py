"""Property-based tests (hypothesis): whatever a user types as a config override or as aug_img's
arguments is either taken, with the right type and meaning, or refused with one clear line
(a UserError; argparse's own usage error for what it parses) - never another exception."""
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aug_img
from config import apply_overrides, check_values, gen_default
from semcnn.files.errors import UserError

DEFAULT = {**gen_default('example'), 'name': 'example_default'}
KEYS = sorted(k for k in DEFAULT if k != 'name')
EXISTING_FOLDER = tempfile.gettempdir()


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), text=st.text(max_size=24))
def test_an_override_is_typed_or_refused(key, text):
    try:
        cfg = apply_overrides(DEFAULT, [f'{key}={text}'])
        check_values(cfg)
    except UserError as e:
        assert key in str(e) and '\n' not in str(e)
        return
    assert type(cfg[key]) is type(DEFAULT[key])
    assert {k: v for k, v in cfg.items() if k != key} == {k: v for k, v in DEFAULT.items()
                                                         if k != key}


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(KEYS), data=st.data())
def test_a_value_of_the_right_type_reads_back_as_itself(key, data):
    kind = type(DEFAULT[key])
    value = data.draw({bool: st.booleans(), int: st.integers(-10**9, 10**9),
                       float: st.floats(allow_nan=False, allow_infinity=False),
                       str: st.text(max_size=24)}[kind])
    text = str(value).lower() if kind is bool else repr(value) if kind is float else str(value)
    assert apply_overrides(DEFAULT, [f'{key}={text}'])[key] == value


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1, max_size=16).filter(lambda k: '=' not in k
                                                   and k.strip() not in KEYS))
def test_an_unknown_key_is_refused_with_the_known_ones(key):
    with pytest.raises(UserError, match='unknown key'):
        apply_overrides(DEFAULT, [f'{key}=1'])


def number_text():
    """Mostly whole numbers, some as people or keyboards write them, some anything."""
    odd = st.sampled_from(['²', '٣', '1e3', ' 64 ', '0x10', '+5', '1_000', ''])
    return st.one_of(st.integers(-20, 20000).map(str), st.integers(1, 3000).map(str), odd,
                     st.text(max_size=6))


@settings(max_examples=400, deadline=None)
@given(size=number_text(), test=st.integers(-5, 120).map(str), ratio=st.integers(-5, 120).map(str),
       pixel=st.one_of(st.sampled_from(['half', 'full', 'HALF']), number_text()),
       name=st.one_of(st.none(), st.text(max_size=12)),
       crops=st.one_of(st.none(), st.text(max_size=12),
                       st.lists(st.integers(-3, 2000), min_size=3, max_size=3).map(
                           lambda c: ','.join(map(str, c)))))
def test_aug_img_arguments_are_valid_or_refused(size, test, ratio, pixel, name, crops):
    argv = [EXISTING_FOLDER, size, '-t', test, '-r', ratio, '-p', pixel]
    argv += [] if name is None else [f'--name={name}']
    argv += [] if crops is None else [f'--crops={crops}']
    try:
        args = aug_img.get_args_parser().parse_args(argv)
    except SystemExit as e:          # argparse: a usage line and 'error: ...', exit status 2
        assert e.code == 2
        return
    try:
        aug_img.check_args(args)
    except UserError as e:
        assert '\n' not in str(e)
        return
    assert args.pixel in ('half', 'full') or args.pixel > 0
    assert 0 < args.test < 100 and 0 < args.ratio < 100 and args.test + args.ratio < 100
    assert args.name and '/' not in args.name and not args.name.startswith('.')
    if args.pixel != 'full':
        assert min(args.split_crops) >= 1
        if crops is None:
            assert sum(args.split_crops) == args.size

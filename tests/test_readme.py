"""What the README (and the pages of docs/) name exists: commands, flags, versions, --set keys,
links, repository paths and stated defaults. Nothing is trained; each script's argument parser
is asked instead (conftest._script loads a top-level script as a module).

Each check returns the problems it finds as text, so a failure says what to fix in the page;
test_the_checks_catch_a_broken_readme makes sure the checks can fail.
"""
import contextlib
import functools
import glob
import io
import os
import re
import shlex
import subprocess
import sys

import config
from conftest import ROOT, _script
from semcnn.files.errors import UserError
from semcnn.settings import parse_value

README = os.path.join(ROOT, 'README.md')
PAGES = [README, *sorted(glob.glob(os.path.join(ROOT, 'docs', '*.md')))]
KEYS = config.gen_default('x')
# Folders a user makes or a run writes: named in the pages, not part of the repository.
NOT_IN_REPO = ('runs/', 'data/', 'source/', 'demo_source', 'new_frames', 'my_frames', '../', '~')


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def code_blocks(text, languages=('', 'bash', 'sh', 'powershell')):
    """The code blocks of a page in the given languages (```text blocks are not commands)."""
    return [body for language, body in re.findall(r'^```(\w*)\n(.*?)^```', text, re.S | re.M)
            if language in languages]


def command_lines(text):
    """Each command of the code blocks as a list of words (`a && b` gives two; comments go)."""
    for block in code_blocks(text):
        for line in block.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            try:
                words = list(lexer)
            except ValueError:      # not shell (a PowerShell path with backslashes, ...)
                continue
            command = []
            for word in words + [';']:
                if word in ('&&', ';', '|', '||'):
                    if command:
                        yield command
                    command = []
                else:
                    command.append(word)


def script_and_arguments(words):
    """('X.py', [arguments]) of `python X.py ...`, `python3 X.py ...` or `torchrun ... X.py ...`;
    None for other commands."""
    while words and re.fullmatch(r'[A-Z_]+=\S*', words[0]):   # PYTHON=python bash demo.sh
        words = words[1:]
    if not words or words[0] not in ('python', 'python3', 'torchrun'):
        return None
    scripts = [i for i, w in enumerate(words) if w.endswith('.py')]
    if not scripts or (words[0] != 'torchrun' and scripts[0] != 1):
        return None
    return words[scripts[0]], words[scripts[0] + 1:]


@functools.lru_cache(maxsize=None)
def help_options(script):
    """The options `python script --help` lists, for the scripts whose parser is built inside
    main()."""
    text = subprocess.run([sys.executable, os.path.join(ROOT, script), '--help'], cwd=ROOT,
                          capture_output=True, text=True, timeout=120).stdout
    return set(re.findall(r'(?<![\w-])(--?[a-zA-Z][\w-]*)', text))


def argument_problems(script, arguments):
    """What the script's parser refuses in `arguments`; an option must be named in full (argparse
    would take a prefix of it, which the next option added could make ambiguous)."""
    module = _script(script)
    parser = module.get_args_parser() if hasattr(module, 'get_args_parser') else None
    options = set(parser._option_string_actions) if parser else help_options(script)
    problems = [f'{script}: no option {word}' for word in arguments
                if re.fullmatch(r'--?[a-zA-Z][\w-]*', word.split('=')[0])
                and word.split('=')[0] not in options]
    if parser is None or problems:
        return problems
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(arguments)
    except SystemExit:
        message = err.getvalue().strip().splitlines()[-1].split('error: ')[-1]
        return [f'{script} {" ".join(arguments)}: {message}']
    return []


def command_problems(text):
    """Every command of the code blocks runs as far as its argument parser, its files exist."""
    problems = []
    for words in command_lines(text):
        if words[0] in ('bash', 'sh') and len(words) > 1:
            if not os.path.exists(os.path.join(ROOT, words[1])):
                problems.append(f'{" ".join(words)}: no file {words[1]}')
        if 'install' in words:      # pip install -r FILE -c FILE
            for flag, name in zip(words, words[1:]):
                if flag in ('-r', '-c') and not os.path.exists(os.path.join(ROOT, name)):
                    problems.append(f'{" ".join(words)}: no file {name}')
        if words[:3] in (['python', '-m', 'pytest'], ['python3', '-m', 'pytest']) and '-m' in \
                words[3:]:
            markers = read(os.path.join(ROOT, 'pytest.ini'))
            expression = words[words.index('-m', 3) + 1]
            problems += [f'pytest marker {m!r} is not in pytest.ini'
                         for m in re.findall(r'\w+', expression)
                         if m not in ('not', 'and', 'or') and f'\n    {m}:' not in markers]
        found = script_and_arguments(words)
        if found is None:
            continue
        script, arguments = found
        if not os.path.exists(os.path.join(ROOT, script)):
            problems.append(f'{" ".join(words)}: no script {script}')
            continue
        problems += argument_problems(script, arguments)
    return problems + config_problems(text)


def config_problems(text):
    """Every `--version NAME` is a version of config.py, every `--set key=value` a key that takes
    that value (anywhere in the page, prose included)."""
    problems = [f'--version {v}: not in config.VERSIONS'
                for v in re.findall(r'--version ([a-z0-9_]+)', text) if v not in config.VERSIONS]
    for key, value in re.findall(r'--set ([a-z_]+)=([^\s`]*)', text):
        if key not in KEYS:
            problems.append(f'--set {key}: not a key of config.gen_default')
        elif value and not value.isupper() and value != '...':   # not a placeholder (N, PATH)
            try:
                parse_value(key, value, KEYS[key])
            except UserError:
                problems.append(f'--set {key}={value}: not a value of that key')
    return problems


def slug(heading):
    """The anchor GitHub gives a heading."""
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors(path):
    found, seen = set(), {}
    text = re.sub(r'^```.*?^```', '', read(path), flags=re.S | re.M)
    for heading in re.findall(r'^#+ (.*)$', text, re.M):
        base = slug(heading)
        found.add(base if base not in seen else f'{base}-{seen[base]}')
        seen[base] = seen.get(base, 0) + 1
    return found


def link_problems(text, page):
    """Every relative link leads to a file of the repository, and its #anchor to a heading."""
    problems = []
    for target in re.findall(r'\]\(([^)\s]+)\)', text):
        if re.match(r'[a-z]+:', target):
            continue
        name, _, anchor = target.partition('#')
        path = os.path.normpath(os.path.join(os.path.dirname(page), name)) if name else page
        if not os.path.exists(path):
            problems.append(f'link {target}: no file {os.path.relpath(path, ROOT)}')
        elif anchor and path.endswith('.md') and anchor not in anchors(path):
            where = os.path.relpath(path, ROOT)
            problems.append(f'link {target}: no heading #{anchor} in {where}')
    return problems


def path_problems(text):
    """Every repository path named in backticks exists (a folder, a .py, .txt or .sh file, or a
    path with a slash); outputs and a user's folders (runs/, data/, source/, ...) are not
    looked for."""
    problems = []
    for name in re.findall(r'`([\w./-]+)`', text):
        if name.startswith(('-', *NOT_IN_REPO)) or not re.search(r'/|\.(py|txt|sh)$', name):
            continue
        if not os.path.exists(os.path.join(ROOT, name)):
            problems.append(f'`{name}`: not in the repository')
    return problems


def default_problems(text):
    """The defaults the page states are config.py's."""
    problems = []
    for stated in re.findall(r'default version is `(\w+)`', text):
        if stated != config.version:
            problems.append(f'default version {stated}: config.version is {config.version}')
    for stated in re.findall(r'default dataset is `(\w+)`', text):
        if stated != config.dataset_name:
            problems.append(f'default dataset {stated}: config.dataset_name is '
                            f'{config.dataset_name}')
    return problems


def problems_of(text, page=README):
    return (command_problems(text) + link_problems(text, page) + path_problems(text)
            + default_problems(text))


def test_readme_commands_flags_links_paths_and_defaults_exist():
    assert problems_of(read(README)) == []


def test_docs_commands_flags_links_paths_and_defaults_exist():
    problems = [f'{os.path.relpath(page, ROOT)}: {p}' for page in PAGES[1:]
                for p in problems_of(read(page), page)]
    assert problems == []


def test_results_links_lead_somewhere():
    results = os.path.join(ROOT, 'RESULTS.md')
    assert link_problems(read(results), results) == []


def test_the_readme_states_the_default_version_and_dataset():
    text = read(README)
    assert re.search(r'default version is `(\w+)`', text)
    assert re.search(r'default dataset is `(\w+)`', text)


def test_the_readme_test_command_is_the_one_ci_runs():
    ci = [line.strip() for line in read(os.path.join(ROOT, '.ci', 'run')).splitlines()
          if line.startswith('python')]
    assert any(' && '.join(ci) in block for block in code_blocks(read(README)))


def test_the_readme_split_defaults_are_aug_img_s():
    """The card's `-t 10 -r 20`, which the README calls the defaults."""
    text = ' '.join(read(README).split())
    assert '`-t 10`' in text and '`-r 20`' in text and 'these two are the defaults' in text
    args = _script('aug_img.py').get_args_parser().parse_args(['source', '1'])
    assert (args.test, args.ratio) == (10, 20)


def test_the_readme_recipes_are_versions():
    table = read(README).split('## Recipes')[1].split('\n## ')[0]
    named = re.findall(r'^\| `(\w+)`', table, re.M)
    assert named and [n for n in named if n not in config.VERSIONS] == []


def test_the_configuration_page_lists_every_version_and_every_key_with_its_default():
    text = read(os.path.join(ROOT, 'docs', 'configuration.md'))
    versions = text.split('## Versions')[1].split('\n## ')[0]
    listed = set(re.findall(r'`(\w+)`', ''.join(re.findall(r'^\| ([^|]*)\|', versions, re.M))))
    assert listed == set(config.VERSIONS)
    keys = text.split('## Every key')[1].split('\n## ')[0]
    rows = re.findall(r'^\| `(\w+)` \| ([^|]*) \|', keys, re.M)
    assert sorted(k for k, _ in rows) == sorted(KEYS)
    for key, stated in rows:
        default, stated = KEYS[key], stated.strip().strip('`')
        if key == 'data_dir':
            continue
        if isinstance(default, bool):
            assert stated == str(default).lower(), key
        elif isinstance(default, (int, float)):
            assert float(stated) == default, key
        else:
            assert stated == (default or 'empty'), key


def test_the_data_page_states_aug_img_s_defaults():
    parser = _script('aug_img.py').get_args_parser()
    options = {o: a for a in parser._actions for o in a.option_strings}
    table = read(os.path.join(ROOT, 'docs', 'data.md')).split('| argument |')[1].split('\n\n')[0]
    for first, meaning in re.findall(r'^\| ([^|]*) \| (.*) \|$', table, re.M):
        for flag in re.findall(r'--?[a-z][\w-]*', first):
            assert flag in options, flag
            stated = re.search(r'default (\d+)', meaning)
            if stated:
                assert options[flag].default == int(stated.group(1)), flag


def test_the_readme_reads_in_five_minutes():
    assert len(read(README).splitlines()) <= 200


def test_the_checks_catch_a_broken_readme():
    text = read(README)
    broken = {'--no-such-flag': text.replace('-n example', '-n example --no-such-flag', 1),
              'cpu31': text.replace('--version cpu30', '--version cpu31', 1),
              'epoch': text + '\n`--set epoch=3`\n',
              'nope.md': text.replace('(docs/data.md)', '(docs/nope.md)', 1),
              'trains.py': text.replace('python train.py', 'python trains.py', 1),
              'default version': text.replace('default version is `cpu`',
                                              'default version is `gpu`', 1)}
    for what, page in broken.items():
        assert page != text, what
        assert any(what in p for p in problems_of(page)), what

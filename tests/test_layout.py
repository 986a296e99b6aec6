"""The layout docs/development.md's "Layout" section promises: commands and the card's files at
the top, everything else in the semcnn package, which imports none of them, with no import
cycles."""
import ast
import os
import subprocess
import sys

from conftest import ROOT

CARD = {'config', 'dataset', 'utils'}      # the files the seed tells a user to edit
COMMANDS = {'aug_img', 'train', 'test', 'predict', 'gradcam', 'audit', 'transfer'}
LOOP = {'engine'}   # train.py's loop, imported once its command line is checked
TOP = CARD | COMMANDS | LOOP


def top_level_modules():
    return {f[:-3] for f in os.listdir(ROOT) if f.endswith('.py')}


def package_modules():
    """{'semcnn.files.frames': path, ...} of every module of the package."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, 'semcnn')):
        for f in files:
            if f.endswith('.py'):
                rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, '.')
                found[rel.removesuffix('.__init__')] = os.path.join(folder, f)
    return found


def imports_of(path, known):
    """The modules of `known` that the file at `path` imports (anywhere in it)."""
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding='utf-8').read())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [f'{node.module}.{a.name}' for a in node.names]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def test_top_level_holds_only_the_commands_the_card_files_and_the_loop():
    assert top_level_modules() == TOP


def test_the_package_imports_no_command_and_no_card_file():
    modules = package_modules()
    for name, path in modules.items():
        assert not imports_of(path, TOP), f'{name} imports {imports_of(path, TOP)}'


def test_no_import_cycles():
    modules = package_modules()
    known = set(modules) | TOP
    paths = {**modules, **{m: os.path.join(ROOT, f'{m}.py') for m in TOP}}
    graph = {m: imports_of(p, known) - {m} for m, p in paths.items()}
    done, path = set(), []

    def visit(m):
        assert m not in path, 'import cycle: ' + ' -> '.join(path[path.index(m):] + [m])
        if m in done:
            return
        path.append(m)
        for n in graph[m]:
            visit(n)
        path.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_every_module_says_its_job_in_its_docstring():
    for name, path in package_modules().items():
        doc = ast.get_docstring(ast.parse(open(path, encoding='utf-8').read()))
        assert doc and doc.strip(), f'{name} has no docstring'


def test_config_checks_values_without_torch_or_the_model_libraries():
    # a config read and checked costs no torch import (2 s on a 2-core machine); a torchvision
    # or timm model name alone is looked up in its library
    code = ('import sys, config; config.check_values(config.apply_overrides('
            'config.get_config("x", "cpu30"), ["model=semnet"])); '
            'print(sorted(m for m in ("torch", "torchvision", "timm", "sklearn", "matplotlib") '
            'if m in sys.modules))')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'

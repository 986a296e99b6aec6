"""Mutation run over the code that decides what the results mean: does a test fail when it breaks?

    pip install -r bench/requirements-mutation.txt     # mutmut 2.5.1: development only
    python bench/mutation.py                           # every group (about an hour, 2 CPU cores)
    python bench/mutation.py --group evaluation        # one group
    python bench/mutation.py --list                    # the scope and the tests of each group

For each group of SCOPE, mutmut changes one place of the named functions at a time (a
comparison, an operator, a number, a keyword, ...) and runs the group's tests; a mutant that no
test notices "survives". Strings and f-strings are left alone: they are messages. Prints the
mutation score per group and overall, and writes bench/mutation_results.txt: the score and
every survivor as one line, with its explanation from bench/mutation_survivors.md (a survivor
without one is marked UNEXPLAINED, and the exit status is 1).

Why mutmut 2.x and not 3.x: 2.x mutates the files in place, so the tests that run the scripts as
a user would (python train.py ..., in a subprocess) see the mutant; 3.x activates mutants by
trampolines and picks each mutant's tests by in-process coverage, which never sees those runs.
The named functions are handed to mutmut as the added lines of a patch (--use-patch-file).

Not part of CI. Run it on a clean checkout of the scope files: mutmut writes each mutant into
the file itself and restores it; a run killed with SIGKILL can leave one behind (git diff shows
it; git checkout restores it).
"""
import argparse
import ast
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'bench', 'mutation_results.txt')
EXPLAINED = os.path.join(ROOT, 'bench', 'mutation_survivors.md')

# group: ({file: [function or Class.method names, or 're:' + a pattern of single lines]}, tests)
SCOPE = {
    'evaluation': (
        {'evaluation.py': ['class_factors', 'factor_probabilities', 'score',
                           'read_crop_sources', 'FrameVotes.has_verdict', 'vote_frames',
                           'evaluate_split', 'factor_columns'],
         'material.py': ['shows_material', 'tiles_needed']},
        ['tests/test_evaluation.py']),
    'split': (
        {'aug_img.py': ['crop_counts', 'split_frames', 'plan_tasks', 'share_out', 'reassign']},
        ['tests/test_aug_img.py::test_frames_never_feed_two_splits',
         'tests/test_aug_img.py::test_crop_counts_follow_t_and_r',
         'tests/test_aug_img.py::test_explicit_crop_counts',
         'tests/test_aug_img.py::test_two_exports_of_one_frame_stay_in_one_split',
         'tests/test_aug_img.py::test_too_few_frames_names_the_class',
         'tests/test_aug_img.py::test_two_unreadable_frames_of_one_split_lose_no_crop',
         'tests/test_claims.py::test_t_and_r_split_frames_as_they_split_crops']),
    'training': (
        {'train.py': ['check_resumable', 're:improved = |best_acc = max|per_split = |'
                                         'channel_stats\\(train_set\\)|'
                                         'resume.classes != classes|start >= cfg'],
         'loaders.py': ['channel_stats'],
         'model.py': ['SEMClassifier.treat']},
        ['tests/test_claims.py::test_best_checkpoint_is_the_validation_peak_not_the_training_peak',
         'tests/test_claims.py::test_normalisation_comes_from_the_training_split_only',
         'tests/test_claims.py::test_test_split_is_scored_with_the_training_normalisation',
         'tests/test_train_test.py::test_checkpoint_round_trip_keeps_weights_and_normalisation',
         'tests/test_train_test.py::test_resume_continues_and_existing_run_is_protected']),
}


def lines_of(path, names):
    """The line numbers of the named functions (their bodies) and 're:' lines of `path`."""
    with open(os.path.join(ROOT, path), encoding='utf-8') as f:
        source = f.read()
    found, wanted = set(), set(n for n in names if not n.startswith('re:'))
    for top in ast.parse(source).body:
        if not isinstance(top, (ast.FunctionDef, ast.ClassDef)):
            continue
        members = [(top.name, top)] + ([(f'{top.name}.{m.name}', m) for m in top.body
                                        if isinstance(m, ast.FunctionDef)]
                                       if isinstance(top, ast.ClassDef) else [])
        for name, node in members:
            if name in wanted:
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    first = node.body[1] if len(node.body) > 1 else first   # skip docstring
                found.update(range(first.lineno, node.end_lineno + 1))
                wanted.discard(name)
    if wanted:
        sys.exit(f'{path}: no function {", ".join(sorted(wanted))}')
    for pattern in (n[3:] for n in names if n.startswith('re:')):
        hits = [i for i, line in enumerate(source.splitlines(), 1) if re.search(pattern, line)]
        if not hits:
            sys.exit(f'{path}: no line matches {pattern!r}')
        found.update(hits)
    return sorted(found), source.splitlines()


def write_patch(files, path):
    """A patch that 'adds' the chosen lines: mutmut mutates those lines only."""
    with open(path, 'w', encoding='utf-8') as out:
        for name, functions in files.items():
            numbers, text = lines_of(name, functions)
            out.write(f'--- a/{name}\n+++ b/{name}\n')
            runs = []
            for n in numbers:
                if runs and n == runs[-1][1] + 1:
                    runs[-1][1] = n
                else:
                    runs.append([n, n])
            for first, last in runs:
                out.write(f'@@ -{first - 1},0 +{first},{last - first + 1} @@\n')
                out.writelines(f'+{text[i - 1]}\n' for i in range(first, last + 1))


def mutmut(*args, capture=False):
    return subprocess.run([sys.executable, '-m', 'mutmut', *args], cwd=ROOT, text=True,
                          capture_output=capture)


def run_group(name):
    files, tests = SCOPE[name]
    patch = os.path.join(ROOT, f'.mutation-{name}.patch')
    write_patch(files, patch)
    runner = f'{sys.executable} -m pytest -x -q -p no:cacheprovider ' + ' '.join(tests)
    try:
        mutmut('run', '--paths-to-mutate', ','.join(files), '--use-patch-file', patch,
               '--runner', runner, '--disable-mutation-types', 'string,fstring',
               '--simple-output', '--no-progress')
    finally:
        os.remove(patch)


def survivors():
    """[(file:line, the mutant's changed line)] of every surviving mutant in mutmut's cache."""
    ids = mutmut('result-ids', 'survived', capture=True).stdout.split()
    found = []
    for mutant in ids:
        diff = mutmut('show', mutant, capture=True).stdout.splitlines()
        where = next((line[4:].strip() for line in diff if line.startswith('--- ')), '?')
        hunk = next((line for line in diff if line.startswith('@@')), '')
        line_no = re.search(r'\+(\d+)', hunk)
        before = [line[1:].strip() for line in diff if line.startswith('-')
                  and not line.startswith('---')]
        after = [line[1:].strip() for line in diff if line.startswith('+')
                 and not line.startswith('+++')]
        offset = next((i for i, line in enumerate(diff[diff.index(hunk) + 1:])
                       if line.startswith('-')), 0) if hunk in diff else 0
        number = int(line_no.group(1)) + offset if line_no else 0
        found.append((f"{where.removeprefix('a/')}:{number}",
                      f"{' '.join(before)}  ->  {' '.join(after)}"))
    return found


def explanations():
    """{'file:line  before  ->  after': explanation} from bench/mutation_survivors.md rows
    '| file:line | `before -> after` | explanation |'."""
    known = {}
    if os.path.isfile(EXPLAINED):
        with open(EXPLAINED, encoding='utf-8') as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip('|').split('|')]
                if len(cells) == 3 and ':' in cells[0] and '->' in cells[1]:
                    known[cells[0], cells[1].strip('`')] = cells[2]
    return known


def counts():
    """(killed, all) mutants in mutmut's cache."""
    total = 0
    killed = 0
    for status in ('killed', 'survived', 'timeout', 'suspicious'):
        n = len(mutmut('result-ids', status, capture=True).stdout.split())
        total += n
        killed += n if status in ('killed', 'timeout') else 0
    return killed, total


def main(args):
    if args.list:
        for name, (files, tests) in SCOPE.items():
            print(f'{name}:')
            for path, functions in files.items():
                print(f"  {path}: {', '.join(functions)} ({len(lines_of(path, functions)[0])} "
                      'lines)')
            print('  tests: ' + ' '.join(tests))
        return 0
    if subprocess.run(['git', 'diff', '--quiet', '--', *sorted(
            {p for files, _ in SCOPE.values() for p in files})], cwd=ROOT).returncode:
        sys.exit('the scope files have uncommitted changes: commit or stash them first '
                 '(mutmut writes mutants into them)')
    for name in args.group or SCOPE:
        run_group(name)
    killed, total = counts()
    known = explanations()
    lines = [f'mutation score: {killed} of {total} mutants killed '
             f'({100 * killed / max(total, 1):.1f} %); survivors:']
    unexplained = 0
    for where, change in survivors():
        why = known.get((where, change))
        unexplained += why is None
        lines.append(f"{where}  {change}  # {why or 'UNEXPLAINED'}")
    with open(RESULTS, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print(f'{unexplained} survivor(s) unexplained; written to {RESULTS}')
    return 1 if unexplained else 0


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--group', action='append', choices=list(SCOPE), help='run only this group')
    p.add_argument('--list', action='store_true', help='show the scope and tests, run nothing')
    sys.exit(main(p.parse_args()))

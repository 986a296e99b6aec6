"""Mutation run over the code that decides what the results mean: does a test fail when it breaks?

    pip install -r bench/requirements-mutation.txt     # mutmut 2.5.1: development only
    python bench/mutation.py                           # every group (about an hour on 2 cores)
    python bench/mutation.py --group evaluation        # one group
    python bench/mutation.py --list                    # the scope and the tests of each group

For each group of SCOPE, mutmut changes one place of the named functions at a time (a
comparison, an operator, a number, a keyword, ...) and runs the group's tests; a mutant that no
test notices "survives". Strings and f-strings are left alone: they are messages. Prints the
mutation score per group and overall, and writes bench/mutation_results.txt: the score and
every survivor as one line, with its explanation from bench/mutation_survivors.md (a survivor
without one is marked UNEXPLAINED, and the exit status is 1). Each group keeps its results in
.mutmut-cache-<group>: --group runs one again, --report only reports.

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
import contextlib
import os
import re
import sqlite3
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'bench', 'mutation_results.txt')
EXPLAINED = os.path.join(ROOT, 'bench', 'mutation_survivors.md')

# group: ({file: [function or Class.method names, or 're:' + a pattern of single lines]}, tests)
SCOPE = {
    'evaluation': (
        {'semcnn/evaluation/scores.py': ['class_factors', 'factor_probabilities', 'score',
                                         'read_crop_sources', 'FrameVotes.has_verdict',
                                         'vote_frames', 'evaluate_split', 'factor_columns'],
         'semcnn/data/material.py': ['shows_material', 'tiles_needed']},
        ['tests/test_evaluation.py']),
    'split': (
        {'aug_img.py': ['crop_counts', 'split_frames', 'plan_tasks', 'share_out', 'reassign']},
        ['tests/test_split.py',
         'tests/test_aug_img.py::test_frames_never_feed_two_splits',
         'tests/test_aug_img.py::test_crop_counts_follow_t_and_r',
         'tests/test_aug_img.py::test_explicit_crop_counts',
         'tests/test_aug_img.py::test_two_exports_of_one_frame_stay_in_one_split',
         'tests/test_aug_img.py::test_too_few_frames_names_the_class',
         'tests/test_aug_img.py::test_two_unreadable_frames_of_one_split_lose_no_crop',
         'tests/test_claims.py::test_t_and_r_split_frames_as_they_split_crops']),
    'training': (
        {'engine.py': ['check_resumable', 'check_same_data',
                       're:improved = |best_acc = max|per_split = |channel_stats\\(train_set\\)|'
                       'start >= cfg']},
        ['tests/test_claims.py::test_best_checkpoint_is_the_validation_peak_not_the_training_peak',
         'tests/test_claims.py::test_normalisation_comes_from_the_training_split_only',
         'tests/test_claims.py::test_test_split_is_scored_with_the_training_normalisation',
         'tests/test_claims.py::test_without_normalisation_the_model_sees_the_crops_as_they_are',
         'tests/test_train_test.py::test_checkpoint_round_trip_keeps_weights_and_normalisation',
         'tests/test_train_test.py::test_resume_continues_and_existing_run_is_protected',
         'tests/test_calibration.py::'
         'test_refit_gives_an_older_run_its_temperature_and_novelty_record_again']),
    'normalisation': (
        {'semcnn/data/loaders.py': ['channel_stats'],
         'semcnn/training/model.py': ['SEMClassifier.treat']},
        ['tests/test_claims.py::test_channel_statistics_are_those_of_the_training_crops',
         'tests/test_claims.py::test_input_treatments_normalise_as_the_readme_says',
         'tests/test_shifts.py::'
         'test_equalized_model_sees_the_same_crop_under_increasing_grey_level_changes',
         'tests/test_train_test.py::test_checkpoint_round_trip_keeps_weights_and_normalisation',
         'tests/test_claims.py::test_normalisation_comes_from_the_training_split_only',
         'tests/test_pretrained.py::'
         'test_the_pretrained_network_sees_equalized_crops_as_imagenet_images']),
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
            out.write(f'diff -u {name} {name}\n--- {name}\n+++ {name}\n')
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


CACHE = os.path.join(ROOT, '.mutmut-cache')
# mutmut's statuses of a mutant some test noticed: failed; failed, but slowly ("suspicious");
# ran past 10 times the unmutated time (an endless loop)
KILLED = ('ok_killed', 'ok_suspicious', 'bad_timeout')


@contextlib.contextmanager
def group_cache(name):
    """mutmut's cache of one group in place (.mutmut-cache-<group> is kept between runs), so that
    a group can be run again without losing the results of the others."""
    kept = f'{CACHE}-{name}'
    if os.path.exists(kept):
        os.replace(kept, CACHE)
    try:
        yield
    finally:
        if os.path.exists(CACHE):
            os.replace(CACHE, kept)


def run_group(name):
    files, tests = SCOPE[name]
    patch = os.path.join(ROOT, f'.mutation-{name}.patch')
    write_patch(files, patch)
    from mutmut import read_patch_data   # the patch must say what SCOPE says, file by file
    if read_patch_data(patch) != {f: set(lines_of(f, names)[0]) for f, names in files.items()}:
        sys.exit(f'{patch}: mutmut reads other lines than SCOPE names')
    runner = f'{sys.executable} -m pytest -x -q -p no:cacheprovider ' + ' '.join(tests)
    try:
        with group_cache(name):
            mutmut('run', '--paths-to-mutate', ','.join(files), '--use-patch-file', patch,
                   '--runner', runner, '--disable-mutation-types', 'string,fstring',
                   '--simple-output', '--no-progress')
    finally:
        os.remove(patch)


def statuses(name):
    """{mutant id: (file, status)} of the group's scope (files and lines), from its cache."""
    scope = {path: set(lines_of(path, functions)[0])
             for path, functions in SCOPE[name][0].items()}
    with group_cache(name):
        if not os.path.exists(CACHE):
            return {}
        with contextlib.closing(sqlite3.connect(f'file:{CACHE}?mode=ro', uri=True)) as db:
            rows = db.execute('SELECT m.id, f.filename, l.line_number, m.status FROM Mutant m '
                              'JOIN Line l ON m.line = l.id JOIN SourceFile f ON '
                              'l.sourcefile = f.id').fetchall()
    return {i: (f, status) for i, f, number, status in rows if number + 1 in scope.get(f, ())}


def survivor(name, mutant):
    """(file:line, 'before  ->  after') of one mutant, from mutmut's diff of it."""
    with group_cache(name):
        diff = mutmut('show', str(mutant), capture=True).stdout.splitlines()
    start = next(i for i, line in enumerate(diff) if line.startswith('@@'))
    where = diff[0][4:].strip()
    first = int(re.search(r'\+(\d+)', diff[start]).group(1))
    body = diff[start + 1:]
    removed = [i for i, line in enumerate(body) if line.startswith('-')]
    before = ' '.join(line[1:].strip() for line in body if line.startswith('-'))
    after = ' '.join(line[1:].strip() for line in body if line.startswith('+'))
    return f'{where}:{first + removed[0]}', f'{before}  ->  {after}'


def squeeze(text):
    return ' '.join(text.split())


def explanations():
    """{(file:line, 'before -> after'): explanation} from the rows of bench/mutation_survivors.md,
    '| file:line | `before -> after` | explanation |' (spaces do not count)."""
    known = {}
    if os.path.isfile(EXPLAINED):
        with open(EXPLAINED, encoding='utf-8') as f:
            for line in f:
                cells = [c.strip() for c in line.strip().strip('|').split('|')]
                if len(cells) == 3 and ':' in cells[0] and '->' in cells[1]:
                    known[cells[0], squeeze(cells[1].strip('`'))] = cells[2]
    return known


def main(args):
    if args.list:
        for name, (files, tests) in SCOPE.items():
            print(f'{name}:')
            for path, functions in files.items():
                print(f"  {path}: {', '.join(functions)} ({len(lines_of(path, functions)[0])} "
                      'lines)')
            print('  tests: ' + ' '.join(tests))
        return 0
    if not args.report:
        scope_files = sorted({p for files, _ in SCOPE.values() for p in files})
        if subprocess.run(['git', 'diff', '--quiet', '--', *scope_files], cwd=ROOT).returncode:
            sys.exit('the scope files have uncommitted changes: commit or stash them first '
                     '(mutmut writes mutants into them)')
        for name in args.group or SCOPE:
            run_group(name)
    known = explanations()
    lines, total, killed, unexplained = [], 0, 0, 0
    for name in SCOPE:
        found = statuses(name)
        done = {i: s for i, s in found.items() if s[1] != 'untested'}
        dead = sum(s[1] in KILLED for s in done.values())
        total, killed = total + len(done), killed + dead
        lines.append(f'{name}: {dead} of {len(done)} mutants killed'
                     + (f' ({len(found) - len(done)} not run)' if len(found) > len(done) else ''))
        for mutant in sorted(i for i, s in done.items() if s[1] == 'bad_survived'):
            where, change = survivor(name, mutant)
            why = known.get((where, squeeze(change)))
            unexplained += why is None
            lines.append(f"  {where}  {change}  # {why or 'UNEXPLAINED'}")
    lines.insert(0, f'mutation score: {killed} of {total} mutants killed '
                    f'({100 * killed / max(total, 1):.1f} %)')
    with open(RESULTS, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print(f'{unexplained} survivor(s) unexplained; written to {RESULTS}')
    return 1 if unexplained else 0


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--group', action='append', choices=list(SCOPE), help='run only this group')
    p.add_argument('--list', action='store_true', help='show the scope and tests, run nothing')
    p.add_argument('--report', action='store_true',
                   help='only report from the groups\' kept caches (.mutmut-cache-<group>)')
    sys.exit(main(p.parse_args()))

"""How a script stops on bad input: one line, a non-zero exit, no traceback.

The line names the file or value and how to fix it."""
import sys


class UserError(Exception):
    """A problem the user can fix; its message is one line naming the file or value."""


def fail(message):
    """Stop the script with one clear line and a non-zero exit, no traceback. Control
    characters that came with a user's value (a newline in a --set) are shown escaped."""
    raise UserError(''.join(c if c.isprintable() else repr(c)[1:-1] for c in message))


def run_main(main, args):
    """Run a script's main(); a UserError becomes 'error: ...' on stderr and exit status 2."""
    try:
        main(args)
    except UserError as e:
        message = str(e)
        if 'Original Traceback' in message:   # raised in a DataLoader worker: ours is the end
            message = message.strip().splitlines()[-1].split('UserError: ', 1)[-1]
        # one write: torchrun's processes share the terminal, and their lines must not mix
        sys.stderr.write(f'error: {message}\n')
        sys.stderr.flush()
        sys.exit(2)
    except KeyboardInterrupt:
        print('interrupted', file=sys.stderr)
        sys.exit(130)

"""The instrument's metadata file beside a frame (`<frame>.jpg.txt` or `<frame>.txt`).

The real ones are `Key : value` lines in sections (`[Image Info]`, `[   - Detector]`, ...),
written by the microscope's software, with Korean AM/PM words in the date; other instruments
write other keys. read_sidecar() takes what it can: any `Key : value` line, any encoding, and
returns {} for a missing or unreadable file. acquisition_numbers() turns the values into numbers
(the first number in the value; a date as days since 1970-01-01) for the shortcut audit.
"""
import datetime
import os
import re

NUMBER = re.compile(r'[-+]?\d+(?:\.\d+)?')
DATE = re.compile(r'(\d{4})-(\d{2})-(\d{2})')


def sidecar_path(frame):
    """The metadata file of `frame`, or None when there is none."""
    for path in (frame + '.txt', os.path.splitext(frame)[0] + '.txt'):
        if os.path.isfile(path):
            return path
    return None


def _decode(raw):
    for encoding in ('utf-8', 'cp949'):   # cp949: the Korean Windows code page
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode('latin-1')   # never fails: every byte is a character


def read_sidecar(frame):
    """{key: value text} of the frame's metadata file; {} when it is missing or unreadable.
    A key seen twice keeps its first value."""
    path = sidecar_path(frame)
    if path is None:
        return {}
    try:
        with open(path, 'rb') as f:
            text = _decode(f.read(1 << 20))
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        key = key.strip()
        if sep and key and not key.startswith('['):
            values.setdefault(key, value.strip())
    return values


def acquisition_numbers(values):
    """{key: float} of the values that hold a number; 'Date' as days since 1970-01-01."""
    numbers = {}
    for key, text in values.items():
        date = DATE.search(text) if key.lower().startswith('date') else None
        if date:
            try:
                day = datetime.date(*map(int, date.groups()))
            except ValueError:
                continue
            numbers[key] = float((day - datetime.date(1970, 1, 1)).days)
            continue
        number = NUMBER.search(text)
        if number and '\\' not in text and '/' not in text:   # not a file's path
            numbers[key] = float(number.group())
    return numbers

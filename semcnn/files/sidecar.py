"""The instrument's metadata file beside a frame (`<frame>.jpg.txt` or `<frame>.txt`).

The real ones are `Key : value` lines in sections (`[Image Info]`, `[   - Detector]`, ...),
written by the microscope's software, with Korean AM/PM words in the date; other instruments
write other keys. read_sidecar() takes what it can: any `Key : value` line, any encoding, and
returns {} for a missing or unreadable file. acquisition_numbers() turns the values into numbers
(the first number in the value; a date as days since 1970-01-01) for the shortcut audit.
acquisition() picks the settings a user would compare between two sessions, under fixed names
(ACQUISITION_COLUMNS), from whichever key the instrument used for them.
"""
import codecs
import datetime
import os
import re

NUMBER = re.compile(r'[-+]?\d+(?:\.\d+)?')
THOUSANDS = re.compile(r'(?<=\d),(?=\d{3}(?!\d))')   # x1,000 -> x1000 (1,5 stays as it is)
DATE = re.compile(r'(\d{4})-(\d{2})-(\d{2})')

# column: (keys that instruments write for it, case-insensitive, first found wins; kind).
# 'number' keeps the first number of the value (20 kV -> 20, 5mm -> 5); a magnification may be
# written in thousands (x500 -> 500, 1.5 kx -> 1500); kilovolts may be written in volts.
ACQUISITION_KEYS = {
    'magnification': (('magnification', 'mag'), 'magnification'),
    'voltage_kv': (('accelerating voltage', 'acceleated voltage', 'accelerated voltage',
                    'high voltage', 'hv', 'eht'), 'kilovolts'),
    'detector': (('detector mode', 'signal', 'detector type', 'signal name', 'detector'), 'name'),
    'working_distance_mm': (('working distance', 'wd'), 'number'),
    'brightness': (('brightness',), 'number'),
    'contrast': (('contrast',), 'number'),
    'date': (('date', 'acquisition date'), 'date'),
}
ACQUISITION_COLUMNS = list(ACQUISITION_KEYS)
# the settings that change what a pixel shows (scale, signal, focus); a frame that differs from
# the training frames in one of them is flagged by predict.py. Brightness and contrast are left to
# the grey-level check, and the date says nothing about the image.
COMPARED = ('magnification', 'voltage_kv', 'detector', 'working_distance_mm')


def sidecar_path(frame):
    """The metadata file of `frame`, or None when there is none."""
    for path in (frame + '.txt', os.path.splitext(frame)[0] + '.txt'):
        if os.path.isfile(path):
            return path
    return None


def _decode(raw):
    # Windows 'Unicode' text: a byte-order mark, and a zero byte beside every ASCII character
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and raw.count(0) > len(raw) // 4:
        return raw.decode('utf-16', errors='replace')
    for encoding in ('utf-8-sig', 'cp949'):   # cp949: the Korean Windows code page
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


def _value(text, kind):
    """The value of one setting in the column's kind, or None when the text does not hold it."""
    text = text.strip()
    if kind == 'name':
        # a detector's name, not a number (the real files also hold 'Detector : 105', a gain)
        return text if text and not NUMBER.fullmatch(text) else None
    if kind == 'date':
        date = DATE.search(text)
        return '-'.join(date.groups()) if date else None
    text = THOUSANDS.sub('', text)
    number = NUMBER.search(text)
    if number is None:
        return None
    value = float(number.group())
    if kind == 'magnification' and text[number.end():].lstrip().lower().startswith('k'):
        value *= 1000
    if kind == 'kilovolts' and 'kv' not in text.lower() and value > 100:
        value /= 1000      # written in volts
    return value


def acquisition(values):
    """{column: value} of ACQUISITION_COLUMNS from read_sidecar()'s dict; '' where unknown."""
    lowered = {key.lower(): text for key, text in values.items()}
    found = {}
    for column, (keys, kind) in ACQUISITION_KEYS.items():
        found[column] = ''
        for key in keys:
            value = _value(lowered[key], kind) if key in lowered else None
            if value is not None:
                found[column] = value
                break
    return found

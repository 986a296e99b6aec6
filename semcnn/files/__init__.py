"""Files and formats: frames, sidecars, the manifest, atomic writes, locks, paths, errors."""

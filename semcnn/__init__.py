"""The library of the SEM pipeline; the commands at the top level use it."""

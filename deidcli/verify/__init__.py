"""`deid verify`: a second, independent pass over a release (OUT_DIR) that looks for anything identifying.

Why independent: a check that reuses the writer's code inherits the writer's blind spots (a tag the
recipe engine mis-resolves, a pseudonymiser that passes a value through). So this package never imports
`deidcli.attributes`, `deidcli.pseudonyms`, `deidcli.pipeline` or the OCR scanner. It reads DICOM with
pydicom, and the facts the run left behind (the private mapping, the audit, the recipe as JSON) as plain
data through its own small readers; it searches for *original* values, re-reads the pixels with another
engine or scale, and reconciles inputs with outputs file by file.

Modules: `release` (SHA256SUMS and run facts, written at the end of `deid run`), `sources` (reading the
run's facts), `recipe_view` (the recipe JSON as data), `needles` (original values and their variants),
`structure`, `pixels`, `reconcile` (the checks) and `scan` (workers, progress, findings JSON).
"""

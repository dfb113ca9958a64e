"""The ``hikd`` command line: one module per command, `output` for what they print."""

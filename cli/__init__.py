"""What every command shares at its edge: the argument parser, the checks on what a user types and on the
paths it names, and the way a mistake reaches the user (one line, no traceback). A library below the commands
(``runners/``, ``analysis/report.py``, ``benchmarks/``): no command imports another.

Every command checks its inputs here, before it loads data or trains:

- values (``cli.args``): ``positive_int``, ``positive_float``, ``non_negative_float`` (finite, in range) as argparse
  types, and ``add_val_teams_argument``, the one way every command reads ``--val-teams``;
- input paths (``cli.paths``): ``input_path`` (exists, right kind);
- output paths (``cli.paths``): ``check_out_dir`` and ``check_out_file``, before any work: a database is never an
  output, an existing output is refused unless ``--force``, and an output is never one of the command's inputs;
- mistakes (``cli.exits``): ``UserError`` (raised anywhere below a command) and ``run(main)`` turn them, and
  Ctrl-C, into one line on stderr and an exit code.

Config files are checked by ``search_space.config.Config.from_dict``, models by ``deploy.exported``.
"""

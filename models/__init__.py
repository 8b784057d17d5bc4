"""The model that comes with the project: ``models/default/`` (``deploy/packaged.py`` reads it). A package only so
that a non-editable ``pip install .`` installs the folder beside ``deploy/`` as package data."""

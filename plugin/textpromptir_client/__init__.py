"""What the Krita and GIMP plugins share: the worker client, settings and the prompt dialog.

Standard library and Qt only: this package runs inside the hosts' own Python.
It speaks to the worker through the textpromptir_wire package, installed beside it.
"""

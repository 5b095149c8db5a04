"""What the Krita and GIMP plugins share: the worker client, its wire format, settings and the prompt dialog.

Standard library and Qt only: this package runs inside the hosts' own Python.
"""

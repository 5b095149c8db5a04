"""The wire between the plugins and the worker: the one package both sides import.

Standard library only, because it runs inside Krita's and GIMP's own Python.
frames.py carries messages over TCP, messages.py types them, discovery.py
finds the running worker and its token.
"""

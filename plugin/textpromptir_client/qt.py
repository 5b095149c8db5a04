"""Qt for the plugins: PyQt5 inside Krita 5, PyQt6 inside Krita 6 and in the project's own environment.

Whichever binding the host has already loaded wins (mixing two in one
process crashes); elsewhere PyQt6 is preferred. Code using these modules
writes enums fully qualified (Qt.AlignmentFlag.AlignLeft), which both accept.
"""

from __future__ import annotations

import sys

if "PyQt5" in sys.modules:
    from PyQt5 import QtCore, QtGui, QtWidgets
else:
    try:
        from PyQt6 import QtCore, QtGui, QtWidgets
    except ImportError:
        from PyQt5 import QtCore, QtGui, QtWidgets

Qt = QtCore.Qt
Signal = QtCore.pyqtSignal
QT_BINDING = QtCore.__name__.split(".")[0]

__all__ = ["QT_BINDING", "Qt", "QtCore", "QtGui", "QtWidgets", "Signal"]

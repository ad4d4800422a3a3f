"""The type tests behind the library's one-line argument errors (each caller words its own).

Python and numpy numbers both pass (np.int64(3) is a count, np.float32(0.5) a number); bool does
not, although Python makes it an int; and a float never passes as an integer, since int(2.7)
would silently turn a wrong value into another valid-looking one.
"""

from __future__ import annotations

import numbers


def is_int(value) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number (Python or numpy, integer or float), not a bool; NaN and inf included."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)

"""Module sources before and after an edit that changes what a call returns: the code
version of a function must change with each (the code-version and resume tests)."""

from __future__ import annotations

#: Seven edits that change what a call returns (2*x becomes 3*x) outside the function's own
#: bytecode, plus an edit of a helper module. Each: (files of v1, files of v2).
EDITS = {
    "global": ("FACTOR = 2\ndef f(x):\n    return FACTOR * x\nTARGET = f\n",
               "FACTOR = 3\ndef f(x):\n    return FACTOR * x\nTARGET = f\n"),
    "helper": ("def helper(x):\n    return 2 * x\ndef f(x):\n    return helper(x) + 1\n"
               "TARGET = f\n",
               "def helper(x):\n    return 3 * x\ndef f(x):\n    return helper(x) + 1\n"
               "TARGET = f\n"),
    "closure": ("def make(k):\n    def f(x):\n        return k * x\n    return f\n"
                "TARGET = make(2)\n",
                "def make(k):\n    def f(x):\n        return k * x\n    return f\n"
                "TARGET = make(3)\n"),
    "partial": ("import functools\ndef f(x, k):\n    return k * x\n"
                "TARGET = functools.partial(f, k=2)\n",
                "import functools\ndef f(x, k):\n    return k * x\n"
                "TARGET = functools.partial(f, k=3)\n"),
    "kwonly_default": ("def f(x, *, k=2):\n    return k * x\nTARGET = f\n",
                       "def f(x, *, k=3):\n    return k * x\nTARGET = f\n"),
    "callable_object": ("class Scale:\n    def __init__(self, k):\n        self.k = k\n"
                        "    def __call__(self, x):\n        return self.k * x\n"
                        "TARGET = Scale(2)\n",
                        "class Scale:\n    def __init__(self, k):\n        self.k = k\n"
                        "    def __call__(self, x):\n        return self.k * x\n"
                        "TARGET = Scale(3)\n"),
    "bound_method": ("class Model:\n    def __init__(self, k):\n        self.k = k\n"
                     "    def apply(self, x):\n        return self.k * x\n"
                     "TARGET = Model(2).apply\n",
                     "class Model:\n    def __init__(self, k):\n        self.k = k\n"
                     "    def apply(self, x):\n        return self.k * x\n"
                     "TARGET = Model(3).apply\n"),
}

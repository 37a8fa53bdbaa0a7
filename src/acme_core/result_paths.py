"""What ``compute()`` returns for per-call result files: the paths, without N strings.

A run of 10^6 calls would hold 10^6 path strings in the user's process (about 100 bytes
each) only to return them. Up to :data:`LIST_LIMIT` calls ``compute()`` returns a plain
``list`` (what ACME returns); above it a :class:`ResultPaths`, a read-only sequence that
builds each call's path when it is asked for, compares equal to the list of the same paths
and costs a few bytes per call only for the calls whose file is not where the pattern says.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

#: Runs of up to this many calls get a ``list`` of paths from ``compute()``.
LIST_LIMIT = 100_000


class ResultPaths(Sequence[str]):
    """Call ``i``'s result file is ``<folder>/<func_name>_<i><suffix>``, unless ``other``
    names another path for it (a result pickled instead of written to HDF5, a file an
    earlier run left elsewhere).

    It behaves as the list of those paths does for reading: ``len``, indexing (also
    negative), slices (a ``list``), iteration, ``in``, ``index``, ``==`` with a list or
    another sequence of paths, and ``list(paths)`` for a real list.

    Parameters
    ----------
    folder : str
        Where the result files are.
    func_name : str
        The name the files start with.
    n_calls : int
        Number of calls (and of paths).
    suffix : str
        The files' ending (``".h5"``, ``".pickle"``).
    other : mapping of int to str, optional
        Paths of calls whose file does not follow the pattern.

    Examples
    --------
    >>> from acme_core.result_paths import ResultPaths
    >>> paths = ResultPaths("/out/f_payload", "f", 3, ".h5", other={2: "/out/f_2.pickle"})
    >>> paths[0], paths[-1], len(paths)
    ('/out/f_payload/f_0.h5', '/out/f_2.pickle', 3)
    >>> paths == ["/out/f_payload/f_0.h5", "/out/f_payload/f_1.h5", "/out/f_2.pickle"]
    True
    """

    __slots__ = ("_folder", "_name", "_n", "_suffix", "_other")

    def __init__(self, folder: str, func_name: str, n_calls: int, suffix: str = ".h5",
                 other: Mapping[int, str] | None = None) -> None:
        self._folder, self._name, self._n, self._suffix = folder, func_name, n_calls, suffix
        self._other = dict(other or {})

    def _path(self, index: int) -> str:
        found = self._other.get(index)
        if found is not None:
            return found
        return os.path.join(self._folder, f"{self._name}_{index}{self._suffix}")

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._path(i) for i in range(*index.indices(self._n))]
        index = int(index)  # also NumPy integers, as a list accepts them
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("result path index out of range")
        return self._path(index)

    def __iter__(self) -> Iterator[str]:
        return map(self._path, range(self._n))

    def __contains__(self, path: object) -> bool:
        return self._find(path) is not None

    def index(self, path: Any, start: int = 0, stop: int | None = None) -> int:
        """The call whose result file is ``path`` (``ValueError`` when there is none)."""
        found = self._find(path)
        if found is None or found < start or (stop is not None and found >= stop):
            raise ValueError(f"{path!r} is not in the result paths")
        return found

    def _find(self, path: object) -> int | None:
        """The call of ``path``, read off its name (no walk over every call)."""
        if not isinstance(path, str):
            return None
        for index, other in self._other.items():
            if other == path:
                return index
        folder, name = os.path.split(path)
        head = f"{self._name}_"
        if folder != self._folder or not name.startswith(head) \
                or not name.endswith(self._suffix):
            return None
        number = name[len(head):len(name) - len(self._suffix)]
        if not number.isdigit() or str(int(number)) != number:
            return None
        index = int(number)
        return index if index < self._n and index not in self._other else None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment] - mutable-looking, as a list

    def __repr__(self) -> str:
        if self._n <= 6:
            return repr(list(self))
        head = ", ".join(repr(self._path(i)) for i in range(3))
        return f"ResultPaths([{head}, ..., {self._path(self._n - 1)!r}], {self._n:,} paths)"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._folder, self._name, self._n, self._suffix, self._other))


class OutFiles(ResultPaths):
    """ACME's ``pmap.kwargv["outFile"]`` of a run of more than :data:`LIST_LIMIT` calls:
    the :class:`ResultPaths` of its result files, whose entries may be rewritten as a
    list's (``pmap.kwargv["outFile"][i] = path`` sends call ``i``'s file there), without
    holding a string per call.

    Examples
    --------
    >>> from acme_core.result_paths import OutFiles
    >>> files = OutFiles("/out/f_payload", "f", 200_000)
    >>> files[7] = "/elsewhere/seven.h5"
    >>> files[7], files[8], files.rewritten()
    ('/elsewhere/seven.h5', '/out/f_payload/f_8.h5', {7: '/elsewhere/seven.h5'})
    """

    __slots__ = ()

    def __setitem__(self, index: int, path: str | os.PathLike[str]) -> None:
        if isinstance(index, slice):
            raise TypeError("pmap.kwargv['outFile'] of a large run takes one path at a time "
                            "(files[i] = path), or replace it by a whole list of paths.")
        self[index]  # noqa: B018 - the same IndexError as a list's
        self._other[int(index) % self._n] = os.fspath(path)

    def rewritten(self) -> dict[int, str]:
        """The calls whose path was rewritten to another than the pattern's: index -> path."""
        return {i: p for i, p in self._other.items()
                if p != os.path.join(self._folder, f"{self._name}_{i}{self._suffix}")}

    def copy(self) -> OutFiles:
        """The same paths, rewritten apart from these."""
        return OutFiles(self._folder, self._name, self._n, self._suffix, self._other)

    def same_pattern(self, other: object) -> bool:
        """True when ``other`` is an :class:`OutFiles` of the same files but for rewrites."""
        return isinstance(other, OutFiles) and (
            other._folder, other._name, other._n, other._suffix) == (
            self._folder, self._name, self._n, self._suffix)


def result_paths(folder: str, func_name: str, n_calls: int, suffix: str = ".h5",
                 other: Mapping[int, str] | None = None) -> list[str] | ResultPaths:
    """What ``compute()`` returns for per-call files: a ``list`` up to :data:`LIST_LIMIT`
    calls, else a :class:`ResultPaths` (the same paths, built on access).

    Examples
    --------
    >>> from acme_core.result_paths import result_paths
    >>> result_paths("/out", "f", 2, ".pickle")
    ['/out/f_0.pickle', '/out/f_1.pickle']
    """
    paths = ResultPaths(folder, func_name, n_calls, suffix, other)
    return list(paths) if n_calls <= LIST_LIMIT else paths


def out_file_paths(folder: str, func_name: str, n_calls: int,
                   suffix: str) -> list[str] | OutFiles:
    """ACME's ``kwargv["outFile"]`` of per-call files: a ``list`` up to :data:`LIST_LIMIT`
    calls, else :class:`OutFiles`.

    Examples
    --------
    >>> from acme_core.result_paths import out_file_paths as paths
    >>> paths("/out", "f", 2, ".h5"), type(paths("/out", "f", 10**6, ".h5")).__name__
    (['/out/f_0.h5', '/out/f_1.h5'], 'OutFiles')
    """
    files = OutFiles(folder, func_name, n_calls, suffix)
    return list(files) if n_calls <= LIST_LIMIT else files

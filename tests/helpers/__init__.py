"""Helpers of the test suite: the functions runs map (workers import them by module name,
``tests.helpers.funcs`` and so on, so each lives in an importable module, never in a test
module) and the small tools several test modules share (SLURM queries, waiting, scripts
run in a subprocess)."""

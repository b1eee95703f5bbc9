"""Runs the test suite once per Keras backend: jax, tensorflow, torch.

`KERAS_BACKEND` must be set before Keras is imported, so each backend gets
its own pytest process. Extra arguments go to pytest, e.g.
`python tests/run_all_backends.py -k golden`. First `ruff check` and
`ruff format --check` run over the tree. Exits non-zero if ruff or any
backend fails.
"""

import os
import subprocess
import sys
import time

BACKENDS = ("jax", "tensorflow", "torch")


def lint(root):
    """`ruff check` and `ruff format --check` over the tree; True if clean."""
    clean = True
    for command in (("check", "."), ("format", "--check", ".")):
        code = subprocess.call(
            [sys.executable, "-m", "ruff", *command], cwd=root
        )
        clean = clean and code == 0
    return clean


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    linted = lint(root)
    backends = os.environ.get("KERAS_ELM_TEST_BACKENDS", ",".join(BACKENDS))
    results = []
    for backend in backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        start = time.perf_counter()
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "tests", *argv], cwd=root, env=env
        )
        results.append((backend, code, time.perf_counter() - start))
    print("\nruff         " + ("passed" if linted else "FAILED"))
    print("backend      result  seconds")
    for backend, code, seconds in results:
        status = "passed" if code == 0 else f"FAILED ({code})"
        print(f"{backend:<12} {status:<7} {seconds:7.1f}")
    passed = linted and all(code == 0 for _, code, _ in results)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

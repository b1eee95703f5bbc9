"""Runs the test suite once per Keras backend: jax, tensorflow, torch.

`KERAS_BACKEND` must be set before Keras is imported, so each backend gets
its own pytest process. Extra arguments go to pytest, e.g.
`python tests/run_all_backends.py -k golden`. Exits non-zero if any backend
fails.
"""

import os
import subprocess
import sys
import time

BACKENDS = ("jax", "tensorflow", "torch")


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    print("\nbackend      result  seconds")
    for backend, code, seconds in results:
        status = "passed" if code == 0 else f"FAILED ({code})"
        print(f"{backend:<12} {status:<7} {seconds:7.1f}")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

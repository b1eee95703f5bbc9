"""Runs the test suite once per Keras backend: jax, tensorflow, torch.

`KERAS_BACKEND` must be set before Keras is imported, so each backend gets
its own pytest process. The processes run side by side, as many at once as
the machine has cores (at most three; `KERAS_ELM_TEST_JOBS=1` runs them one
after the other): most of a test's time is single-threaded Python and
tracing, so two cores finish the three backends in little more than the
slowest one's time. Each process writes to its own log, printed whole when
it ends. Extra arguments go to pytest, e.g.
`python tests/run_all_backends.py -k golden`; `KERAS_ELM_TEST_BACKENDS`
picks backends (`jax,torch`). First `ruff check` and `ruff format --check`
run over the tree. Exits non-zero if ruff or any backend fails.
"""

import os
import subprocess
import sys
import tempfile
import time

BACKENDS = ("jax", "tensorflow", "torch")  # the slowest first


def lint(root):
    """`ruff check` and `ruff format --check` over the tree; True if clean."""
    clean = True
    for command in (("check", "."), ("format", "--check", ".")):
        code = subprocess.call(
            [sys.executable, "-m", "ruff", *command], cwd=root
        )
        clean = clean and code == 0
    return clean


def jobs():
    """How many backends run at once: `KERAS_ELM_TEST_JOBS`, else the
    cores this process may use (at most one per backend)."""
    value = os.environ.get("KERAS_ELM_TEST_JOBS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise SystemExit(
                f"KERAS_ELM_TEST_JOBS must be a positive integer. "
                f"Received: {value!r}"
            )
        return int(value)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, len(BACKENDS)))


def start(backend, argv, root, folder):
    """Starts `pytest tests` for `backend`, its output to a log file."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = open(os.path.join(folder, f"{backend}.log"), "w+")
    basetemp = []
    if not any(arg.startswith("--basetemp") for arg in argv):
        # Each process its own temporary folders, whatever else runs.
        basetemp = [f"--basetemp={os.path.join(folder, backend)}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "tests", *basetemp, *argv],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    print(f"{backend}: started", flush=True)
    return process, log, time.perf_counter()


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    linted = lint(root)
    backends = os.environ.get("KERAS_ELM_TEST_BACKENDS", ",".join(BACKENDS))
    waiting = backends.split(",")
    at_once = jobs()
    running, results = {}, {}
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keras_elm_tests_") as folder:
        while waiting or running:
            while waiting and len(running) < at_once:
                backend = waiting.pop(0)
                running[backend] = start(backend, argv, root, folder)
            time.sleep(0.5)
            for backend, (process, log, began) in list(running.items()):
                code = process.poll()
                if code is None:
                    continue
                del running[backend]
                results[backend] = (code, time.perf_counter() - began)
                log.seek(0)
                print(f"\n===== {backend} =====", flush=True)
                sys.stdout.write(log.read())
                log.close()
                sys.stdout.flush()
    print("\nruff         " + ("passed" if linted else "FAILED"))
    print("backend      result  seconds")
    for backend in backends.split(","):
        code, seconds = results[backend]
        status = "passed" if code == 0 else f"FAILED ({code})"
        print(f"{backend:<12} {status:<7} {seconds:7.1f}")
    print(f"all          {'':<7} {time.perf_counter() - start_all:7.1f}")
    passed = linted and all(code == 0 for code, _ in results.values())
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

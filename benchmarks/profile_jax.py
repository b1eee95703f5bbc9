"""Where the time of one JAX training step of the ELM goes, op by op.

Profiles the gradient of the NeuronIO Branch-ELM (d_m 100, batch 8, T 500,
fast path) on the CPU with XLA's per-op trace events, and prints:

- the wall time of one step, and how it splits between the forward time
  loop, the backward time loop and the ops outside them;
- inside each loop, the cost of one step and of each op in it;
- the most expensive ops outside the loops.

    KERAS_BACKEND=jax python benchmarks/profile_jax.py
    python benchmarks/profile_jax.py --config pathx --steps 3

The trace events add a little time per op, so the step is slower here than
in `bench_elm.py`; the shares are what this script is for.
"""

import argparse
import collections
import glob
import os
import re
import sys
import tempfile
import time

os.environ["KERAS_BACKEND"] = "jax"
# Per-op trace events of XLA's CPU runtime; must be set before jax starts.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true"
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from bench_elm import CONFIGS  # noqa: E402
from bench_elm import OUTPUTS  # noqa: E402
from jax.profiler import ProfileData  # noqa: E402

import keras_elm  # noqa: E402

SKIP = ("ThunkExecutor", "ThreadpoolListener")


def build(config):
    inputs, branches, spb, routing, units, batch, steps = config
    inp = keras.Input((steps, inputs), batch_size=batch)
    out = keras_elm.ELM(
        units,
        output_units=OUTPUTS,
        num_branches=branches,
        synapses_per_branch=spb,
        routing=routing,
        memory_tau_max=150.0,
        return_sequences=True,
        use_fast_path=True,
    )(inp)
    return keras.Model(inp, out)


def hlo_index(hlo_text):
    """Instruction name -> (computation, shape), and while loop bodies."""
    where, bodies = {}, {}
    computation = None
    for line in hlo_text.splitlines():
        head = re.match(r"^(?:ENTRY )?%([\w.-]+) ", line)
        if head:
            computation = head.group(1)
            continue
        inst = re.match(r"^\s+(?:ROOT )?%([\w.-]+) = (\S+)", line)
        if not inst:
            continue
        where[inst.group(1)] = (computation, inst.group(2))
        body = re.search(r"body=%([\w.-]+)", line)
        if body:
            backward = "transpose(" in line
            bodies[body.group(1)] = (inst.group(1), backward)
    return where, bodies


def self_times(profile):
    """Exclusive time and count of every event name, over all threads.

    Events of one thread nest in time (a while loop holds its body's ops);
    each event's time less that of the events directly inside it is its own.
    """
    totals = collections.Counter()
    counts = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            stack = []  # (end, name) of the open events
            for start, duration, name in sorted(
                (e.start_ns, e.duration_ns, e.name) for e in line.events
            ):
                while stack and stack[-1][0] <= start:
                    stack.pop()
                if stack:
                    totals[stack[-1][1]] -= duration
                totals[name] += duration
                counts[name] += 1
                stack.append((start + duration, name))
    return totals, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="neuronio_dm100_b8", choices=sorted(CONFIGS)
    )
    parser.add_argument(
        "--steps", type=int, default=10, help="profiled gradient steps"
    )
    args = parser.parse_args()
    config = CONFIGS[args.config]
    inputs, branches, spb, routing, units, batch, steps = config
    rng = np.random.default_rng(0)
    x = jnp.asarray(
        (rng.random((batch, steps, inputs)) < 0.01).astype("float32")
    )
    y = jnp.asarray(
        rng.standard_normal((batch, steps, OUTPUTS)).astype("float32")
    )
    model = build(config)
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def loss(trainable, x, y):
        out, _ = model.stateless_call(trainable, fixed, x)
        return jnp.mean((out - y) ** 2)

    grad = jax.jit(jax.grad(loss))
    where, bodies = hlo_index(grad.lower(trainable, x, y).compile().as_text())
    for _ in range(3):
        jax.block_until_ready(grad(trainable, x, y))
    walls = []
    for _ in range(args.steps):
        start = time.perf_counter()
        jax.block_until_ready(grad(trainable, x, y))
        walls.append(time.perf_counter() - start)
    wall = sorted(walls)[len(walls) // 2]
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(args.steps):
                jax.block_until_ready(grad(trainable, x, y))
        path = glob.glob(
            os.path.join(folder, "**", "*.xplane.pb"), recursive=True
        )[0]
        totals, counts = self_times(ProfileData.from_file(path))

    per_step = {k: v / args.steps / 1e6 for k, v in totals.items()}
    groups = collections.defaultdict(list)  # loop name or "outside" -> ops
    for name, ms in per_step.items():
        if name.startswith(SKIP) or name not in where:
            continue
        computation, shape = where[name]
        loop = bodies.get(computation)
        key = (
            ("backward loop" if loop[1] else "forward loop")
            if loop
            else ("outside the loops")
        )
        groups[key].append((ms, name, shape, counts[name] // args.steps))

    traced = sum(sum(op[0] for op in ops) for ops in groups.values())
    print(
        f"{args.config} on JAX {jax.__version__}, {os.cpu_count()} CPU "
        f"cores: one gradient step (no optimizer) takes {1e3 * wall:.1f} "
        f"ms (median, untraced); with tracing on, its ops add up to "
        f"{traced:.1f} ms. Times below are per step, each op's own time "
        "summed over threads (an op run on two threads counts twice). "
        "Matmuls are the `ynn_fusion` and `dot` ops.\n"
    )
    for key in ("forward loop", "backward loop", "outside the loops"):
        ops = sorted(groups.get(key, []), reverse=True)
        total = sum(op[0] for op in ops)
        matmuls = [op for op in ops if re.match(r"(ynn_fusion|dot)", op[1])]
        matmul_ms = sum(op[0] for op in matmuls)
        calls = sum(op[3] for op in matmuls)
        print(
            f"{key}: {total:.1f} ms, of which matmuls {matmul_ms:.1f} ms "
            f"({calls} calls, {1e3 * matmul_ms / max(calls, 1):.1f} us "
            "each on average)"
        )
        per_iteration = [op for op in ops if op[3] >= steps // 8]
        if key != "outside the loops" and per_iteration:
            iterations = max(op[3] for op in per_iteration)
            print(
                f"  {iterations} loop iterations; per iteration "
                f"{1e3 * total / iterations:.1f} us"
            )
        for ms, name, shape, count in ops[:12]:
            print(
                f"  {ms:7.2f} ms  {count:6d} calls  "
                f"{1e3 * ms / max(count, 1):7.1f} us/call  {name}  {shape}"
            )
        print()


if __name__ == "__main__":
    main()

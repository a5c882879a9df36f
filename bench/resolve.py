"""Benchmark: `Resolver.resolve()` against a plain dict lookup (docs/architecture.md §11).

Target: "resolve(): within 10x of a plain dict lookup, flat from 10 to 10,000 candidates
per domain". For N candidates in one domain, in two layouts:

  spread   N/10 keys with 10 candidates each (three sources, mixed priority and
           stack_level, a selection on every third key, a StackOrder lifting sources)
  one-key  all N candidates on ONE key

it times `resolver.resolve(Domain.ADAPTER, key)` over a fixed random sequence of existing
keys (timeit-style: best of several repeats, ns per call) and, in the same run, two
baselines over the same key sequence:

  dict     `d[key]` on a plain dict holding the same keys
  f(k)     `def f(k): return d[k]` -- the same lookup behind one Python call, to show
           how much of resolve()'s cost is simply being a call

Every timing includes the `for k in keys:` loop, exactly as `python -m timeit` includes its
own loop; the `net ratio` column subtracts an empty loop measured the same way.
`flatness` is the ratio at this N divided by the ratio at the smallest N (same layout).

Usage:  .venv/bin/python bench/resolve.py [--quick] [--check]
Exits 0 (it is a report) unless --check is given and a target FAILs.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

from oneiric_core.domains import Candidate, Domain  # noqa: E402
from oneiric_core.providers import builtin_candidates  # noqa: E402
from oneiric_core.registry import CandidateRegistry  # noqa: E402
from oneiric_core.resolver import Resolver, StackOrder  # noqa: E402

RATIO_TARGET = 10.0
FLATNESS_TARGET = 2.0
SOURCES = ("builtin", "settings", "remote:alpha")
STACK_ORDER = ("remote:*", "settings", "builtin")
DOMAIN = Domain.ADAPTER


def make_candidates(n: int, layout: str, rng: random.Random) -> tuple[list[Candidate], list[str], dict[str, str]]:
    """N candidates for DOMAIN, their keys, and selections for every third key."""
    per_key = n if layout == "one-key" else min(10, n)
    n_keys = max(1, n // per_key)
    keys = [f"key{i:05d}" for i in range(n_keys)]
    cands: list[Candidate] = []
    for k_index, key in enumerate(keys):
        for c_index in range(per_key):
            cands.append(Candidate(
                domain=DOMAIN, key=key, provider=f"p{c_index:05d}",
                factory="oneiric_core.providers.cache_memory:create",
                priority=rng.randint(-5, 5), stack_level=rng.choice((0, 0, 10)),
                source=SOURCES[(k_index + c_index) % len(SOURCES)],
                settings={"max_entries": 16}, metadata={"description": "bench"},
            ))
    selections: dict[str, str] = {}
    for k_index, key in enumerate(keys):
        if k_index % 3 == 0:
            if k_index % 30 == 0:
                selections[key] = "not-registered"  # a misconfigured selection: ranking falls back
            else:
                selections[key] = f"p{rng.randrange(per_key):05d}"
    return cands, keys, selections


def build(cands: list[Candidate], selections: dict[str, str]) -> tuple[CandidateRegistry, Resolver, float]:
    """A registry with the built-ins, a Resolver on it, then the N candidates; returns the seconds
    `register_many(N)` took (the resolver recomputes the changed keys inside that call)."""
    registry = CandidateRegistry()
    registry.register_many(builtin_candidates())
    resolver = Resolver(registry, selections={DOMAIN: selections},
                        stack_order=StackOrder.parse(list(STACK_ORDER)), settings_dir_label="bench")
    t0 = time.perf_counter()
    registry.register_many(cands)
    return registry, resolver, time.perf_counter() - t0


STATEMENTS = {
    "loop": "for k in keys: pass",
    "dict": "for k in keys: d[k]",
    "call": "for k in keys: f(k)",
    "resolve": "for k in keys: r(D, k)",
    "explain": "for k in keys: ex(D, k)",
}
SETUP = "r = _resolver.resolve; ex = _resolver.explain; d = _plain; keys = _keys; D = _D; f = _f"


def prepare(n: int, layout: str, seq_len: int, reg_repeat: int) -> dict:
    """Build one configuration and measure its (informational) registration costs."""
    rng = random.Random(f"{n}-{layout}")
    cands, keys, selections = make_candidates(n, layout, rng)

    reg_s = []
    for _ in range(reg_repeat):
        registry, resolver, took = build(cands, selections)
        reg_s.append(took)

    # Sanity: resolve() must return what explain() ranks first, for every key.
    for key in keys:
        assert resolver.resolve(DOMAIN, key) is resolver.explain(DOMAIN, key).winner, key

    # The cost of one more change to a populated key: re-registering an existing candidate
    # (same ident, so it replaces in place) makes the resolver re-rank that whole key.
    victim = next(c for c in cands if c.key == keys[0])
    one_more = []
    for _ in range(max(3, reg_repeat)):
        t0 = time.perf_counter()
        registry.register(victim)
        one_more.append(time.perf_counter() - t0)

    sequence = random.Random(7).choices(keys, k=seq_len)
    plain = {key: resolver.resolve(DOMAIN, key) for key in keys}

    def f(k):
        return plain[k]

    namespace = {"_resolver": resolver, "_plain": plain, "_keys": sequence, "_D": DOMAIN, "_f": f}
    return {"n": n, "layout": layout, "keys": len(keys), "namespace": namespace,
            "register_s": min(reg_s), "one_more_s": min(one_more)}


def measure(configs: dict, seq_len: int, target_s: float, repeat: int) -> None:
    """Time every statement of every configuration, interleaved, into the config dicts."""
    jobs = {(cfg_key, name): (stmt, SETUP, cfg["namespace"], seq_len)
            for cfg_key, cfg in configs.items() for name, stmt in STATEMENTS.items()}
    _common.best_ns_per_op(jobs, target_s=target_s / 10, repeat=1)  # warm-up round, discarded
    for (cfg_key, name), ns in _common.best_ns_per_op(jobs, target_s=target_s, repeat=repeat).items():
        configs[cfg_key][name] = ns


def main(argv: list[str] | None = None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        sizes, seq_len, target_s, repeat, reg_repeat = (10, 100), 200, 0.002, 2, 1
    else:
        sizes, seq_len, target_s, repeat, reg_repeat = (10, 1_000, 10_000), 1_000, 0.03, 9, 3
    layouts = ("spread", "one-key")

    print(f"bench/resolve.py -- {_common.environment_line()}")
    print(f"domain {DOMAIN.value}; key sequence of {seq_len:,} random existing keys; "
          f"best of {repeat} interleaved repeats; stack_order {list(STACK_ORDER)}; selection on every third key")
    if args.quick:
        print("(--quick: tiny sizes, the figures are not meaningful)")
    print()

    results = {(n, layout): prepare(n, layout, seq_len, reg_repeat) for layout in layouts for n in sizes}
    measure(results, seq_len, target_s, repeat)

    rows, ok = [], True
    worst_ratio, worst_flat = 0.0, 1.0
    for layout in layouts:
        base = results[(sizes[0], layout)]
        base_ratio = base["resolve"] / base["dict"]
        for n in sizes:
            r = results[(n, layout)]
            ratio = r["resolve"] / r["dict"]
            net = (r["resolve"] - r["loop"]) / max(r["dict"] - r["loop"], 0.1)
            flat = ratio / base_ratio
            worst_ratio = max(worst_ratio, ratio)
            worst_flat = max(worst_flat, flat, 1 / flat)
            rows.append([n, layout, r["keys"], r["resolve"], r["dict"], r["call"], ratio,
                         r["resolve"] / r["call"], net, flat])
    print(_common.table(
        ["N", "layout", "keys", "resolve ns/call", "dict ns/call", "f(k) ns/call", "ratio",
         "ratio vs f(k)", "net ratio", "flatness"], rows))
    loop_ns = [results[k]["loop"] for k in results]
    print(f"(empty `for k in keys: pass` loop: {min(loop_ns):.1f}-{max(loop_ns):.1f} ns/iteration, "
          "included in every ns/call above and subtracted in `net ratio`)")
    print()

    info = []
    for layout in layouts:
        for n in sizes:
            r = results[(n, layout)]
            info.append([n, layout, r["explain"], r["explain"] / r["dict"], r["register_s"] * 1e3,
                         r["register_s"] * 1e6 / n, r["one_more_s"] * 1e3])
    print("informational:")
    print(_common.table(
        ["N", "layout", "explain ns/call", "explain/dict", "register_many(N) ms", "us/candidate",
         "1 more register() ms"], info))
    print()

    ok = worst_ratio <= RATIO_TARGET and worst_flat <= FLATNESS_TARGET
    print(_common.verdict(ok, f"resolve() within {RATIO_TARGET:g}x of a dict lookup (worst ratio "
                              f"{worst_ratio:.2f}) and flat within {FLATNESS_TARGET:g}x from N={sizes[0]:,} "
                              f"to N={sizes[-1]:,} (worst flatness {worst_flat:.2f})"))
    _common.finish(ok, args.check)
    return 0


if __name__ == "__main__":
    main()

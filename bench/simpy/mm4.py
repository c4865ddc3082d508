#!/usr/bin/python3
"""M/M/4 in SimPy 2.3.1 (Debian python3-simpy), the workload of wqsim's
BenchmarkWorkItemMMc and BenchmarkFloorCoroMM4: Poisson arrivals at
3.2/ms, exponential service with mean 1 ms, four FIFO servers (rho = 0.8),
N customers. Prints one line per repetition in Go benchmark format so the
result can be read with benchstat beside the Go benchmarks:

    BenchmarkSimPyMM4  1  <ns/op> ns/op  <ns/item> ns/item  <items/s> items/s

Usage: /usr/bin/python3 bench/simpy/mm4.py [N] [COUNT]
(defaults: 1,000,000 customers, 1 repetition). Times are virtual
nanoseconds, as in wqsim, so the queue's mean wait (0.746 ms by Erlang C)
is printed to stderr as a sanity check.
"""
import random
import sys
import time

import SimPy.Simulation as S

LAMBDA_PER_NS = 3.2e-6   # 3.2 arrivals per ms
MU_PER_NS = 1e-6         # mean service 1 ms
SERVERS = 4


class Customer(S.Process):
    def visit(self, servers, stats, rng):
        arrived = S.now()
        yield S.request, self, servers
        stats[0] += S.now() - arrived
        stats[1] += 1
        yield S.hold, self, rng.expovariate(MU_PER_NS)
        yield S.release, self, servers


class Source(S.Process):
    def generate(self, n, servers, stats, rng):
        for _ in range(n):
            yield S.hold, self, rng.expovariate(LAMBDA_PER_NS)
            c = Customer()
            S.activate(c, c.visit(servers, stats, rng))


def run(n, seed):
    rng = random.Random(seed)
    S.initialize()
    servers = S.Resource(capacity=SERVERS, qType=S.FIFO)
    stats = [0.0, 0]
    src = Source()
    S.activate(src, src.generate(n, servers, stats, rng))
    S.simulate(until=1e18)
    return stats


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for i in range(count):
        start = time.perf_counter_ns()
        wait, served = run(n, 1 + i)
        elapsed = time.perf_counter_ns() - start
        if served != n:
            sys.exit(f"served {served} of {n}")
        print(f"BenchmarkSimPyMM4 \t       1\t{elapsed} ns/op\t"
              f"{elapsed / n:.1f} ns/item\t{n / (elapsed / 1e9):.0f} items/s")
        print(f"mean wait {wait / served / 1e6:.3f} ms (Erlang C: 0.746 ms)", file=sys.stderr)


if __name__ == "__main__":
    main()

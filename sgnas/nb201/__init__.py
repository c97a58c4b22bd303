"""NAS-Bench-201: its cell search space, network, weight-sharing supernet and per-cell costs.

Modules: :mod:`.space` (ops, edges, arch strings, the benchmark index), :mod:`.network` (the fixed
NB201 network and its analytic FLOPs/params), :mod:`.supernet` (single-path and weighted forwards),
:mod:`.cost` (per-cell cost tables and their exact expectation under per-edge distributions),
:mod:`.bench` (reading the benchmark's CSV tables).
"""
